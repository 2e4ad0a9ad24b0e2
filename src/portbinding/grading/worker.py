"""A grading worker (``portbinding grade-worker``): one submission at a time, on this machine's engine.

The task (see ``distributed``) is laid out as a course of its own and graded by ``portbinding
grade`` in a process of its own session -- the same sandbox, door and limits as the local pool.

That grading run must never outlive the task it belongs to and overlap with the next one: a
pool process killed mid-task has its task requeued *at once* (``reject_on_worker_lost``), and
two gradings of one submission on one engine at once compete for it (both start the learner's
containers, on a machine with two cores). So:

* the run is tied to the pool process's life: when that dies, the run gets SIGTERM
  (``PR_SET_PDEATHSIG``), which ``portbinding grade`` treats as an interrupt -- it ends its
  nbgrader run and removes the submission's sandboxes and containers;
* the run holds this worker's lock (an ``flock`` it inherits) until it has ended, and the next
  task takes the lock before it starts: a requeued submission waits for the run it replaces.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from portbinding.grading.course import nbgrader_env
from portbinding.grading.distributed import (
    QUEUE,
    TASK_NAME,
    ClusterError,
    _b64,
    _regular_files,
    _unb64,
    _write_files,
    make_app,
)

LOGGER = logging.getLogger(__name__)

WORKER_DIR = Path("/var/lib/portbinding-grading-worker")
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _grade_task(task: Any, payload: dict[str, Any]) -> dict[str, Any]:
    """Celery's entry point: grade one task in this worker's folder (PORTBINDING_WORKER_DIR or WORKER_DIR)."""
    return grade_payload(payload, workdir=Path(os.environ.get("PORTBINDING_WORKER_DIR", str(WORKER_DIR))))


def grade_payload(payload: dict[str, Any], *, workdir: Path) -> dict[str, Any]:
    """Grade one submission as a course of its own, with this machine's engine; the result to merge."""
    with _one_run_at_a_time(workdir) as (lock, work):
        return _grade_in(work / "course", payload, lock)


def _grade_in(root: Path, payload: dict[str, Any], lock: int) -> dict[str, Any]:
    """Lay the task out as a course at ``root`` and grade it there, in a run that holds ``lock``."""
    assignment, student = str(payload["assignment"]), str(payload["student"])
    try:
        root.mkdir(parents=True, mode=0o700)
        (root / "nbgrader_config.py").write_text(_trusted_config(str(payload["config"])))
        (root / "gradebook.db").write_bytes(_unb64(payload["gradebook"]))
        _write_files(root / "source" / assignment, payload["source"])
        _write_files(root / "release" / assignment, payload["release"])
        _write_files(root / "submitted" / student / assignment, payload["files"])
        command = [
            sys.executable,
            "-m",
            "portbinding",
            "grade",
            assignment,
            "--course",
            str(root),
            "--student",
            student,
            "--workers",
            "1",
            "--json",
            "--time-limit",
            str(payload["time_limit_s"]),
        ]
        if payload.get("cell_timeout_s") is not None:
            command += ["--cell-timeout", str(payload["cell_timeout_s"])]
        result = subprocess.run(
            command,
            cwd=root,
            env=nbgrader_env(),
            capture_output=True,
            text=True,
            timeout=float(payload["time_limit_s"]) + 300,
            start_new_session=True,  # Ctrl-C at the worker's terminal is the worker's to handle
            preexec_fn=_ends_with_this_process(),
            pass_fds=(lock,),
            check=False,
        )
        if result.returncode != 0:
            raise ClusterError(
                f"portbinding grade failed on {socket.gethostname()}: {result.stderr.strip()[-600:]}"
            )
        outcome = json.loads(result.stdout)["submissions"][0]
        record_path = root / "reports" / assignment / f"{student}.json"
        return {
            "submission_id": payload["submission_id"],
            "attempt": payload["attempt"],
            "worker": worker_name(),
            "outcome": outcome,
            "gradebook": _b64((root / "gradebook.db").read_bytes()),
            "autograded": {
                n: _b64(d) for n, d in _regular_files(root / "autograded" / student / assignment).items()
            },
            "record": json.loads(record_path.read_text()) if record_path.exists() else None,
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def _one_run_at_a_time(workdir: Path) -> Iterator[tuple[int, Path]]:
    """This worker's lock, taken once no earlier grading run holds it, and its emptied folder.

    The lock's fd is for the run to inherit: the lock stays held while the run lives, even after
    this process has died (an flock belongs to the open file, not to a process). Only the run
    holds it: it opens files close-on-exec and starts its own processes without this fd. A
    run is bounded by its own time limit, so the wait is too. With the lock held no run of
    this worker is alive, so whatever its folder holds (a scratch course whose pool process
    was killed) can go.
    """
    name = worker_name()
    workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(workdir / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            LOGGER.warning("waiting for this worker's previous grading run to stop and clean up")
            fcntl.flock(fd, fcntl.LOCK_EX)
        shutil.rmtree(workdir / name, ignore_errors=True)
        yield fd, workdir / name
    finally:
        os.close(fd)


def _ends_with_this_process() -> Callable[[], None]:
    """For ``preexec_fn``: the child gets SIGTERM when this process (the pool process) dies."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the child only calls it
    parent = os.getpid()

    def in_child() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the request: no signal will come
            os.kill(os.getpid(), signal.SIGTERM)

    return in_child


def _trusted_config(config: str) -> str:
    """The course config a task names, only if it is the one installed on this worker.

    nbgrader runs its config file as Python, as root here: a task must never be able to bring its
    own. The coordinator's config must equal the course's (this worker's installed copy).
    """
    from portbinding.paths import course_material

    installed = (course_material() / "grader" / "nbgrader_config.py").read_text()
    if config != installed:
        raise ClusterError(
            "The task's nbgrader_config.py differs from the course config installed on this worker; "
            "a worker runs only its own (nbgrader executes the file as Python).",
            hint="install the same version of the course on the coordinator and every worker",
        )
    return installed


def worker_name() -> str:
    """How results name the worker: PORTBINDING_WORKER_NAME, else the host name."""
    return os.environ.get("PORTBINDING_WORKER_NAME") or socket.gethostname()


def run_worker(
    broker: str,
    *,
    name: str,
    visibility_timeout_s: float,
    max_tasks: int | None = None,
    loglevel: str = "INFO",
) -> int:
    """Run a Celery worker grading one submission at a time (blocks until stopped).

    With ``max_tasks`` (a Kubernetes Job: one worker per submission) it runs the task in its own
    process (``solo`` pool) and asks itself to shut down after that many; the shutdown request
    is handled only once the task is acknowledged, so the submission is never left in between.
    """
    os.environ.setdefault("PORTBINDING_WORKER_NAME", name)
    app = make_app(broker, visibility_timeout_s=visibility_timeout_s)
    app.task(name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True)(_grade_task)
    pool = "prefork"
    if max_tasks is not None:
        from celery.signals import task_postrun

        pool, done = "solo", [0]

        @task_postrun.connect(weak=False)  # type: ignore[untyped-decorator]
        def _count(sender: Any = None, **_: Any) -> None:
            done[0] += 1
            if done[0] >= max_tasks:
                app.control.shutdown(destination=[sender.request.hostname])

    argv = [
        "worker",
        "--concurrency",
        "1",
        "--pool",
        pool,
        "--queues",
        QUEUE,
        "--hostname",
        f"{name}@%h",
        "--loglevel",
        loglevel,
        "--without-gossip",
        "--without-mingle",
    ]
    app.worker_main(argv)
    return 0
