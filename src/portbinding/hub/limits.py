"""Per-student limits on the hub: one cgroup per student holding everything they run.

Rootless Podman cannot set container limits on cgroup v1 (it has no cgroup of its own to
delegate: ``--memory`` is ignored with a warning), and a student could start containers
without ``--memory`` anyway. So the hub limits the *student*: their Jupyter server, their
Podman service, its pause process, conmon and every container process (children of the
service inherit its cgroup) share one memory cgroup and one pids cgroup. That holds on v1 and
v2 alike. Containers are bounded through pids (each needs conmon plus its own processes);
no engine here counts containers per user, so there is no separate container cap.

The groups live under ``portbinding-hub/<hub>/<user>`` in each controller (v1) or in the
unified tree (v2). Root creates them and moves processes in; a student can read their own
limits and usage (``describe``) but not change them.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from portbinding.errors import PortBindingError
from portbinding.probe import wait_until

LOGGER = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
PARENT = "portbinding-hub"


class LimitsUnavailable(PortBindingError):
    """The per-student cgroups cannot be made here."""


@dataclass(frozen=True)
class StudentLimits:
    """What one student may use, all their processes and containers together."""

    memory_bytes: int = 2 * 2**30
    pids: int = 512

    def describe(self) -> str:
        return f"memory {self.memory_bytes / 2**30:g} GiB, {self.pids} processes (containers included)"


def unified() -> bool:
    """Whether this machine has cgroup v2 (one tree) rather than v1 (a tree per controller)."""
    return (CGROUP_ROOT / "cgroup.controllers").exists()


def groups(hub: str, user: str) -> list[Path]:
    """The student's cgroup folders: one on v2, the memory and pids ones on v1."""
    if unified():
        return [CGROUP_ROOT / PARENT / hub / user]
    return [CGROUP_ROOT / controller / PARENT / hub / user for controller in ("memory", "pids")]


def apply(hub: str, user: str, limits: StudentLimits) -> list[Path]:
    """Create (or update) the student's cgroups with ``limits``; the folders. Needs root."""
    made = groups(hub, user)
    try:
        if unified():
            _enable_controllers(made[0])
        for group in made:
            group.mkdir(parents=True, exist_ok=True)
        for name, value in _limit_files(limits):
            target = next((group / name for group in made if (group / name).exists()), None)
            if target is None:
                raise LimitsUnavailable(f"no cgroup file {name} under {made}")
            target.write_text(f"{value}\n")
    except OSError as exc:
        raise LimitsUnavailable(
            f"The per-student limits could not be set under {CGROUP_ROOT} ({exc}).",
            hint="run the hub as root on a machine with the memory and pids cgroup controllers",
        ) from exc
    return made


def join(hub: str, user: str, pid: int) -> None:
    """Move process ``pid`` into the student's cgroups (its children follow it)."""
    for group in groups(hub, user):
        with contextlib.suppress(ProcessLookupError):
            try:
                (group / "cgroup.procs").write_text(f"{pid}\n")
            except OSError as exc:
                if exc.errno != errno.ESRCH:  # it exited meanwhile: nothing to limit
                    raise


def join_user_processes(hub: str, user: str, uid: int) -> int:
    """Move every process running as ``uid`` into the student's cgroups; how many were moved.

    The Podman service re-executes itself into a user namespace and starts a pause process:
    whatever of that already runs is caught here, and everything they start later inherits.
    """
    moved = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError, StopIteration, ValueError):
            line = next(x for x in status.read_text().splitlines() if x.startswith("Uid:"))
            if int(line.split()[1]) == uid:
                join(hub, user, int(status.parent.name))
                moved += 1
    return moved


def members(hub: str, user: str) -> list[int]:
    """The pids in the student's cgroup (the first folder's view)."""
    with contextlib.suppress(OSError):
        return [int(p) for p in (groups(hub, user)[0] / "cgroup.procs").read_text().split()]
    return []


def remove(hub: str, user: str, *, timeout: float = 10.0) -> None:
    """Kill what still runs in the student's cgroups and remove them (and empty parents)."""
    for pid in members(hub, user):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    for group in groups(hub, user):
        if not group.exists():
            continue
        # rmdir fails with EBUSY until the killed processes are gone: wait on that condition.
        if not wait_until(lambda g=group: _rmdir(g), timeout=timeout, max_interval=0.1):  # type: ignore[misc]
            LOGGER.warning("could not remove cgroup %s", group)
        for parent in (group.parent, group.parent.parent):
            with contextlib.suppress(OSError):
                parent.rmdir()  # only when no other hub or student uses it


def current(pid: int | None = None) -> dict[str, int | None]:
    """The memory and pids limits and usage of the cgroup ``pid`` (default: this process) is in.

    Readable by the student themselves: what ``portbinding doctor`` shows on the hub.
    """
    paths = _own_groups(pid or os.getpid())
    if unified():
        folder = paths.get("", CGROUP_ROOT)
        memory = pids = folder
        names = ("memory.max", "memory.current", "pids.max", "pids.current")
    else:
        memory, pids = paths.get("memory", CGROUP_ROOT), paths.get("pids", CGROUP_ROOT)
        names = ("memory.limit_in_bytes", "memory.usage_in_bytes", "pids.max", "pids.current")
    return {
        "memory_limit": _read_int(memory / names[0]),
        "memory_used": _read_int(memory / names[1]),
        "pids_limit": _read_int(pids / names[2]),
        "pids_used": _read_int(pids / names[3]),
    }


def _own_groups(pid: int) -> dict[str, Path]:
    """{controller: folder} from /proc/PID/cgroup ("" for the v2 tree)."""
    found: dict[str, Path] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                base = CGROUP_ROOT / controller if controller else CGROUP_ROOT
                found[controller] = base / path.lstrip("/")
    return found


def _read_int(path: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        text = path.read_text().strip()
        return None if text == "max" else int(text)
    return None


def _limit_files(limits: StudentLimits) -> list[tuple[str, int]]:
    if unified():
        return [("memory.max", limits.memory_bytes), ("pids.max", limits.pids)]
    return [("memory.limit_in_bytes", limits.memory_bytes), ("pids.max", limits.pids)]


def _enable_controllers(group: Path) -> None:
    """On v2, switch the memory and pids controllers on down to the student's folder."""
    level = CGROUP_ROOT
    for part in group.relative_to(CGROUP_ROOT).parts:
        (level / "cgroup.subtree_control").write_text("+memory +pids")
        level = level / part
        level.mkdir(exist_ok=True)


def _rmdir(group: Path) -> bool:
    try:
        group.rmdir()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True
