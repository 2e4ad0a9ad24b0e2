"""The machine the course runs on: Debian packages, commands as typed, and services the course starts.

Three services are started the same way -- dockerd, a rootless Podman API service, the process
engine's daemon: in a session of their own (they outlive the command or kernel that started
them, as a system service would), logging to a file, then polled until they answer. When one
exits or stays silent, the error shows the end of its log, which is where the reason is.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from portbinding import settings
from portbinding.errors import EngineUnavailable
from portbinding.probe import wait_until

LOGGER = logging.getLogger(__name__)

APT_TIMEOUT_S = 900
# curl to localhost and the docker CLI must never go through a proxy a learner's machine sets.
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def debian_like() -> bool:
    """Whether this is Debian, Ubuntu or a derivative (where the course may apt-get install)."""
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return False
    return any(
        line.split("=", 1)[1].strip('"').lower() in ("debian", "ubuntu") or "debian" in line.lower()
        for line in text.splitlines()
        if line.startswith(("ID=", "ID_LIKE="))
    )


def apt_install(*packages: str) -> None:
    """``apt-get update`` then install ``packages`` (Debian/Ubuntu, as root); a clear error if it fails."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log = settings.apt_log()
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as out:
        for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", *packages]):
            LOGGER.debug("running %s (log: %s)", command, log)
            result = subprocess.run(
                command, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=APT_TIMEOUT_S, check=False
            )
            if result.returncode != 0:
                raise EngineUnavailable(
                    f"`{' '.join(command)}` failed (exit {result.returncode}); see {log}.",
                    hint="check that Debian's package mirror is reachable, then run it again",
                )


class Typed(NamedTuple):
    """What a command run as typed printed, its exit code, and a note when it had to be stopped."""

    output: str
    code: int
    note: str = ""

    @property
    def text(self) -> str:
        """The output with the note under it, as a terminal would leave it."""
        return f"{self.output.rstrip()}\n{self.note}".strip() if self.note else self.output


def run_as_typed(
    argv: Sequence[str],
    timeout: float,
    *,
    docker_host: str | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Typed:
    """Run a command a learner could type; what it printed and its exit code.

    Both streams come back as one, interleaved as a terminal shows them (curl -v writes its trace
    to stderr). Nothing to type: stdin is empty (curl telnet:// ends when the far side closes).
    ``docker_host`` points a docker CLI at the course's engine, whatever its context says. A
    command still running after ``timeout`` is stopped: 124, with what it printed so far and a
    note saying so (kept apart, so a caller that shortens the output keeps the note); one that
    cannot start: 127, saying why.
    """
    variables = {k: v for k, v in os.environ.items() if k not in _PROXY_VARIABLES}
    if docker_host:
        variables["DOCKER_HOST"] = docker_host
        variables.pop("DOCKER_CONTEXT", None)
    variables.update(env or {})
    try:
        done = subprocess.run(
            list(argv),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            env=variables,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        partial = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        return Typed(partial, 124, f"(no end within {timeout:g} s: stopped)")
    except OSError as exc:
        return Typed("", 127, f"({argv[0]} could not run: {exc})")
    return Typed(done.stdout, done.returncode)


def log_tail(path: Path, lines: int = 8) -> str:
    """The last ``lines`` lines of a log file, for an error message ("(no log)" if unreadable)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start_service(
    argv: Sequence[str],
    *,
    name: str,
    log: Path,
    answers: Callable[[], bool],
    timeout: float,
    exit_hint: str,
    cwd: Path | None = None,
    started: Callable[[subprocess.Popen[bytes]], object] | None = None,
    error: type[EngineUnavailable] = EngineUnavailable,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session, logging to ``log``, and wait until ``answers()``.

    ``started`` sees the process before the wait (to record its pid: a service that is slow to
    answer must still be stoppable). If the process exits first, or ``timeout`` passes, raise
    ``error`` naming ``name`` with the end of the log; ``exit_hint`` is the next step for an exit.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    LOGGER.debug("starting %s: %s (log: %s)", name, list(argv), log)
    with log.open("ab") as output:
        # A new session: the service must survive the make target (and terminal) that started it.
        process = subprocess.Popen(
            list(argv),
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            start_new_session=True,
        )
    if started is not None:
        started(process)
    if wait_until(answers, timeout=timeout, alive=lambda: process.poll() is None, max_interval=0.5):
        LOGGER.debug("%s answers (pid %s)", name, process.pid)
        return process
    if process.poll() is not None:
        raise error(
            f"{name} exited with status {process.returncode} while starting:\n{log_tail(log)}", hint=exit_hint
        )
    raise error(f"{name} did not answer within {timeout:g} s:\n{log_tail(log)}", hint=f"read {log}")
