"""The host's view of a container: its process's network namespace, read and entered from here.

On a local engine, as root, a container's main process (``State.Pid``) shows its network
namespace at ``/proc/PID/net/tcp`` and can be entered with ``nsenter --net``: the listening
sockets and a probe from inside, with no exec round trip and nothing run in the container. The
PID is trusted only when it is provably the container's (see :func:`namespace_pid`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from docker.models.containers import Container

from portbinding.diagnose.probe_script import INSIDE_PROBE, PROBE_TIMEOUT_S, parse_replies
from portbinding.engine import Engine
from portbinding.procnet import Listener, listeners_from_proc


def namespace_pid(engine: Engine, container: Container) -> int | None:
    """The container's main process as this machine sees it, or None where that is not trusted.

    Only when its cgroup names the container or its network namespace is the one the engine
    keeps for it (``SandboxKey``, where visible from here): on a remote engine (or in a VM, as
    Docker Desktop runs) the PID belongs to another kernel, and a PID can be reused once the
    container exits. The process engine's processes share this machine's namespace, so it
    answers by exec.
    """
    if engine.info.kind == "process":
        return None
    state = container.attrs.get("State") or {}
    pid = int(state.get("Pid") or 0) if isinstance(state, dict) else 0
    if pid <= 0:
        return None
    try:
        named = str(container.id) in Path(f"/proc/{pid}/cgroup").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    # The engine's own handle on the container's namespace (SandboxKey), where this machine sees
    # it: the same inode proves the PID is in that namespace (rootless Podman has no cgroup of
    # its own to name the container), a different one that it is not.
    sandbox = str((container.attrs.get("NetworkSettings") or {}).get("SandboxKey") or "")
    same: bool | None = None
    try:
        if sandbox:
            handle, mine = os.stat(sandbox), os.stat(f"/proc/{pid}/ns/net")
            # Another file system: the handle is mounted in a namespace of the engine's own
            # (rootless Podman), and seen from here it says nothing.
            same = handle.st_ino == mine.st_ino if handle.st_dev == mine.st_dev else None
    except OSError:
        same = None  # not visible from here
    if same is False or not (named or same):
        return None
    return pid


def nsenter_permitted() -> bool:
    """Entering another network namespace takes root (CAP_SYS_ADMIN) and util-linux's nsenter."""
    return os.geteuid() == 0 and shutil.which("nsenter") is not None


def read_listeners(pid: int) -> tuple[Listener, ...] | None:
    try:
        tcp = Path(f"/proc/{pid}/net/tcp").read_text(encoding="ascii")
    except OSError:
        return None
    try:
        tcp6 = Path(f"/proc/{pid}/net/tcp6").read_text(encoding="ascii")
    except OSError:
        tcp6 = ""  # no IPv6 in this kernel
    return tuple(listeners_from_proc(tcp, tcp6))


def run_probe(pid: int, targets: list[str], notes: list[str]) -> dict[str, object]:
    """The inside probe of ``targets`` (``host:port``), run with this machine's Python in the
    namespace of ``pid``: its replies by target ({} when it failed, with a note saying why)."""
    if not targets:
        return {}
    # -S: no site-packages (the script needs the standard library only); the namespace is the
    # container's, the file system and the interpreter are this machine's.
    command = [
        "nsenter",
        f"--net=/proc/{pid}/ns/net",
        "--",
        sys.executable,
        "-S",
        "-c",
        INSIDE_PROBE,
        *targets,
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        notes.append("the probe from inside its network namespace timed out")
        return {}
    except OSError as exc:
        notes.append(f"could not enter the container's network namespace: {exc}")
        return {}
    replies = parse_replies(done.stdout)
    if not replies:
        notes.append(f"the probe inside its network namespace failed: {done.stderr.strip()[:160]}")
    return replies


def tools_in(pid: int, container: Container) -> tuple[str, ...]:
    """Which of cat and python3 are on the container's PATH, seen through /proc/PID/root.

    Only looked at (lexists: an absolute symlink in there would resolve on this machine), never
    run: it decides which command the learner is shown, ``docker exec`` or a helper container.
    """
    env = (container.attrs.get("Config") or {}).get("Env") or []
    path = next((str(item)[5:] for item in env if str(item).startswith("PATH=")), _DEFAULT_PATH)
    root = f"/proc/{pid}/root"
    return tuple(
        tool
        for tool in ("cat", "python3")
        if any(
            os.path.lexists(f"{root}{folder}/{tool}") for folder in path.split(":") if folder.startswith("/")
        )
    )


_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
