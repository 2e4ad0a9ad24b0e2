"""``nbgrader autograde`` for one submission, forked from a warm process instead of started cold.

Starting an nbgrader process costs about 6 s on the grading machine (imports, jsonschema
building a grammar, the interpreter's exit) -- far more than the sandbox itself. A
multiprocessing *forkserver* (a clean process of its own, started once per ``portbinding
grade``, with no threads) imports nbgrader and the grading code once; each submission is a
process forked from it, so it starts warm. It is still one process per submission, as
before: its own session (killed whole at the time limit), its own working folder,
environment and log, and nothing shared with the next one but what the forkserver imported.

An interrupt (Ctrl-C, SIGTERM) reaches every run through a ``Stop``: each waits on its process
*and* the stop, so the grader ends its runs at once instead of waiting out their time limits.

As with any multiprocessing start method but ``fork``, the caller's ``__main__`` is imported
again in each process: a script calling ``grade_assignment`` needs the usual
``if __name__ == "__main__":`` guard (``portbinding``'s console script has it).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import traceback
from multiprocessing.context import ForkServerContext
from pathlib import Path

# Imported once by the forkserver: what every `nbgrader autograde` of this course loads.
PRELOAD = ["portbinding.grading.warm"]
_context: ForkServerContext | None = None


def _forkserver() -> ForkServerContext:
    global _context
    if _context is None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        _context = context
    return _context


class Stopped(Exception):
    """The run was ended by a ``Stop`` (the grader was interrupted), not by its own doing."""


class Stop:
    """A flag that runs wait on together with their process: a pipe, readable once set.

    A threading.Event cannot be waited on beside a process sentinel without polling; a pipe can.
    """

    def __init__(self) -> None:
        self._read, self._write = os.pipe()

    def set(self) -> None:
        with contextlib.suppress(OSError):  # set twice fills nothing: one byte is enough
            os.write(self._write, b"x")

    def is_set(self) -> bool:
        return bool(multiprocessing.connection.wait([self._read], timeout=0))

    def fileno(self) -> int:
        return self._read

    def close(self) -> None:
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)


def run_nbgrader(
    argv: list[str], *, cwd: Path, env: dict[str, str], log: Path, timeout: float, stop: Stop | None = None
) -> int | None:
    """Run ``nbgrader ARGV`` in a forked process; its exit code, or None when it ran past ``timeout``
    (then it and everything in its session were killed). Raises ``Stopped`` when ``stop`` is set
    first (it was killed the same way)."""
    if stop is not None and stop.is_set():
        raise Stopped("the grader was interrupted before this submission started")
    process = _forkserver().Process(target=_child, args=(argv, str(cwd), env, str(log)), daemon=False)
    process.start()
    multiprocessing.connection.wait([process.sentinel, *([stop.fileno()] if stop else [])], timeout)
    if process.exitcode is None:
        for kill in (os.killpg, os.kill):  # its session; itself, should it not have made one yet
            with contextlib.suppress(ProcessLookupError, PermissionError, TypeError):
                kill(process.pid or 0, signal.SIGKILL)
        process.join(30)
        if stop is not None and stop.is_set():
            raise Stopped("the grader was interrupted while grading this submission")
        return None
    return process.exitcode


def _no_syspath(app: object) -> None:
    """In place of nbgrader's ``init_syspath`` (which inserts the current folder): nothing."""


def _child(argv: list[str], cwd: str, env: dict[str, str], log: str) -> None:
    """In the forked process: a session, folder, environment and log of its own, then nbgrader."""
    code = 1
    try:
        os.setsid()  # the time limit kills the whole session
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        sys.argv = ["nbgrader", *argv]
        from nbgrader.apps.baseapp import NbGrader
        from nbgrader.apps.nbgraderapp import NbGraderApp

        # nbgrader puts the current folder first on sys.path; root imports nothing from a folder
        # (the scratch course holds a submission's files), only from its own environment.
        NbGrader.init_syspath = _no_syspath
        NbGraderApp.launch_instance(argv=argv)
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except BaseException:  # reported in the log, which the grader reads
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)  # no interpreter teardown: about a second saved, and nothing left to tidy
