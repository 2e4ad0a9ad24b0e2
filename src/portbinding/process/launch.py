"""Where the process engine's daemon listens, and starting and stopping it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from pathlib import Path

from portbinding import settings
from portbinding.errors import EngineUnavailable
from portbinding.host import start_service
from portbinding.paths import cache_dir
from portbinding.probe import wait_until

# How the daemon names itself in /version, so `doctor` can tell it from Docker and Podman.
COMPONENT = "Port Binding Lab process engine"
START_TIMEOUT = 20.0


def selected() -> bool:
    """Whether the learner (or binder/start) chose the process engine."""
    return settings.engine_choice() == "process"


def state_dir() -> Path:
    return cache_dir() / "process-engine"


def socket_path(state: Path | None = None) -> Path:
    return (state or state_dir()) / "engine.sock"


def url(state: Path | None = None) -> str:
    return f"unix://{socket_path(state)}"


def answers(state: Path | None = None) -> bool:
    """Whether a daemon accepts connections on the socket (a connect, no request)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(2)
        return probe.connect_ex(str(socket_path(state))) == 0


def ensure_running(state: Path | None = None, *, timeout: float = START_TIMEOUT) -> str:
    """The daemon's URL, starting it first when nothing answers.

    It runs in its own session, so it outlives the kernel or command that started it, as
    dockerd does; its containers end with it.
    """
    state = state or state_dir()
    if answers(state):
        return url(state)
    command = [sys.executable, "-m", "portbinding.process.daemon", "--socket", str(socket_path(state))]
    try:
        state.mkdir(parents=True, exist_ok=True)
        start_service(
            [*command, "--state", str(state)],
            name="The process engine",
            log=state / "daemon.log",
            answers=lambda: answers(state),
            timeout=timeout,
            exit_hint=f"read {state / 'daemon.log'}",
            started=lambda daemon: (state / "daemon.pid").write_text(str(daemon.pid)),
        )
    except OSError as exc:
        raise EngineUnavailable(
            f"The process engine could not start: {exc}.",
            hint=f"it keeps its files in {cache_dir()} ({settings.CACHE_ENV} chooses another folder): "
            "make that writable",
        ) from exc
    return url(state)


def stop(state: Path | None = None, *, timeout: float = 20.0) -> None:
    """Stop the daemon (SIGTERM: it ends its containers first) and wait until it is gone."""
    state = state or state_dir()
    try:
        pid = int((state / "daemon.pid").read_text())
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    gone = wait_until(lambda: not _alive(pid), timeout=timeout)
    if not gone:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    (state / "daemon.pid").unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):  # a zombie child of ours counts as gone
        if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            return False
    return True
