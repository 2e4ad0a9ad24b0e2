"""The cgroups of grading sandboxes: a pids and a memory limit each (cgroup v1 or v2).

Each sandbox gets groups named like its folder under ``portbinding-grading/`` (so ``reap``
finds them if their grader died). The jail puts the sandbox's first process in them before
it drops privileges; everything the sandbox starts inherits them, and they are removed --
killing whatever is left inside -- when the sandbox closes. v1 (the hybrid layout of this
machine) is tested; the v2 path (one tree, controllers enabled per level) is kept working
in code but untested here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from pathlib import Path

LOGGER = logging.getLogger(__name__)

ROOT = Path("/sys/fs/cgroup")
NAME = "portbinding-grading"


def make(name: str, *, pids: int, memory_mb: int) -> list[Path]:
    """A pids and a memory cgroup called ``name``; OSError when they cannot be made."""
    memory = str(memory_mb * 2**20)
    if (ROOT / "cgroup.controllers").exists():  # v2: one tree, controllers enabled per level
        parent = ROOT / NAME
        parent.mkdir(exist_ok=True)
        with contextlib.suppress(OSError):
            (ROOT / "cgroup.subtree_control").write_text("+pids +memory")
        (parent / "cgroup.subtree_control").write_text("+pids +memory")
        group = parent / name
        group.mkdir()
        (group / "pids.max").write_text(str(pids))
        (group / "memory.max").write_text(memory)
        with contextlib.suppress(OSError):  # only where swap accounting is on
            (group / "memory.swap.max").write_text("0")
        return [group]
    groups = []
    for controller, settings in (
        ("pids", {"pids.max": str(pids)}),
        ("memory", {"memory.limit_in_bytes": memory}),
    ):
        group = ROOT / controller / NAME / name
        group.mkdir(parents=True)
        groups.append(group)
        for key, value in settings.items():
            (group / key).write_text(value)
    with contextlib.suppress(OSError):  # only where swap accounting is on
        (groups[1] / "memory.memsw.limit_in_bytes").write_text(memory)
    return groups


def paths(name: str) -> list[Path]:
    """Where the groups called ``name`` are (whether or not they exist)."""
    if (ROOT / "cgroup.controllers").exists():
        return [ROOT / NAME / name]
    return [ROOT / controller / NAME / name for controller in ("pids", "memory")]


def events_file(groups: list[Path], controller: str, *names: str) -> str | None:
    """The first of ``names`` that exists in ``controller``'s group (the counters the jail watches)."""
    for group in groups:
        if len(groups) == 1 or controller in group.parts:
            for name in names:
                if (group / name).exists():
                    return str(group / name)
    return None


def remove(group: Path) -> None:
    """Kill anything still in the group (the jail normally did), then remove it."""
    for _ in range(50):
        try:
            members = (group / "cgroup.procs").read_text().split()
        except OSError:
            return  # already gone
        for pid in members:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        try:
            group.rmdir()
            return
        except OSError:
            # Killed processes leave the group a moment after the signal: wait for that, briefly.
            wait_for_empty(group / "cgroup.procs")
    LOGGER.warning("could not remove the cgroup %s", group)


def wait_for_empty(procs: Path, *, timeout: float = 0.2) -> None:
    """Poll a cgroup's member list until it is empty or ``timeout`` passes."""
    from portbinding.probe import ProbeResult, wait_for

    def empty() -> ProbeResult:
        try:
            members = procs.read_text().strip()
        except OSError:
            members = ""
        return ProbeResult("ok" if not members else "refused", "cgroup members", 0.0)

    wait_for(empty, timeout=timeout, max_interval=0.02)
