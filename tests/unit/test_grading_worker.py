"""A grading worker's run never overlaps the next: the lock it inherits, the signal when its parent dies.

Real processes and real locks (no engine needed): a run stands in for ``portbinding grade``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from portbinding.grading.worker import _one_run_at_a_time
from portbinding.probe import wait_until

# A stand-in grading run: holds whatever it inherited until its stdin closes.
HOLD = [sys.executable, "-c", "import sys; sys.stdin.read()"]


@pytest.fixture(autouse=True)
def _named_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTBINDING_WORKER_NAME", "unit")


def test_the_next_task_waits_until_the_run_holding_the_lock_has_ended(tmp_path: Path) -> None:
    """The task that started the run is gone (its fd closed); the run alone keeps the lock."""
    with _one_run_at_a_time(tmp_path) as (lock, _):
        run = subprocess.Popen(HOLD, stdin=subprocess.PIPE, pass_fds=(lock,))
    taken = threading.Event()

    def next_task() -> None:
        with _one_run_at_a_time(tmp_path):
            taken.set()

    waiter = threading.Thread(target=next_task, daemon=True)
    waiter.start()
    try:
        assert not taken.wait(1.0), "the next task started while the earlier run still held the lock"
    finally:
        assert run.stdin is not None
        run.stdin.close()
        run.wait(timeout=30)
    assert taken.wait(30), "the next task never started after the earlier run ended"
    waiter.join(timeout=30)


def test_taking_the_lock_clears_what_a_killed_task_left_in_its_folder(tmp_path: Path) -> None:
    (tmp_path / "unit" / "course" / "submitted").mkdir(parents=True)
    with _one_run_at_a_time(tmp_path) as (_, work):
        assert work == tmp_path / "unit"
        assert not work.exists(), f"left from before: {list(work.rglob('*'))}"


def test_a_run_gets_sigterm_when_the_process_that_started_it_dies(tmp_path: Path) -> None:
    """The pool process is SIGKILLed (no chance to clean up): its run is told to stop all the same."""
    told = tmp_path / "told"
    run = textwrap.dedent(f"""
        import signal, sys
        signal.signal(signal.SIGTERM, lambda *_: (open({str(told)!r}, "w").close(), sys.exit(0)))
        print("ready", flush=True)
        signal.pause()
    """)
    pool_process = textwrap.dedent(f"""
        import subprocess, sys
        from portbinding.grading.worker import _ends_with_this_process
        run = subprocess.Popen([sys.executable, "-c", {run!r}], preexec_fn=_ends_with_this_process(),
                               stdout=subprocess.PIPE, text=True, start_new_session=True)
        assert run.stdout is not None and run.stdout.readline() == "ready\\n"
        print(run.pid, flush=True)
        sys.stdin.read()
    """)
    parent = subprocess.Popen(
        [sys.executable, "-c", pool_process], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    run_pid = int(parent.stdout.readline())
    try:
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)
        assert wait_until(told.exists, timeout=30), "the run was not told to stop when its parent died"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(run_pid, signal.SIGKILL)
