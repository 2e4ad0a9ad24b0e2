"""The cgroups of grading sandboxes: a pids, a memory and a CPU limit each (cgroup v1 or v2).

The CPU limit (one core by default, a CFS quota) keeps one submission from starving the
others graded beside it: without it a kernel with a few busy processes took every core of the
machine (each process has its own 120 s RLIMIT_CPU), and the other worker's checks crawled.
It is kept where the machine allows it; a machine without the cpu controller grades without.

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


PERIOD_US = 100_000


def make(name: str, *, pids: int, memory_mb: int, cpus: float = 1.0) -> list[Path]:
    """A pids, a memory and (where possible) a cpu cgroup called ``name``; OSError when the
    first two cannot be made."""
    memory = str(memory_mb * 2**20)
    quota = str(max(1_000, int(cpus * PERIOD_US)))
    if (ROOT / "cgroup.controllers").exists():  # v2: one tree, controllers enabled per level
        parent = ROOT / NAME
        parent.mkdir(exist_ok=True)
        with contextlib.suppress(OSError):
            (ROOT / "cgroup.subtree_control").write_text("+pids +memory +cpu")
        (parent / "cgroup.subtree_control").write_text("+pids +memory")
        with contextlib.suppress(OSError):
            (parent / "cgroup.subtree_control").write_text("+cpu")
        group = parent / name
        group.mkdir()
        (group / "pids.max").write_text(str(pids))
        (group / "memory.max").write_text(memory)
        with contextlib.suppress(OSError):  # only where swap accounting is on
            (group / "memory.swap.max").write_text("0")
        try:
            (group / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        except OSError as error:
            LOGGER.warning("grading sandboxes run without a CPU limit: %s", error)
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
    cpu = ROOT / "cpu" / NAME / name
    try:
        cpu.mkdir(parents=True)
        (cpu / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        (cpu / "cpu.cfs_quota_us").write_text(quota)
    except OSError as error:
        LOGGER.warning("grading sandboxes run without a CPU limit: %s", error)
        with contextlib.suppress(OSError):
            cpu.rmdir()
    else:
        groups.append(cpu)
    return groups


def paths(name: str) -> list[Path]:
    """Where the groups called ``name`` are (whether or not they exist)."""
    if (ROOT / "cgroup.controllers").exists():
        return [ROOT / NAME / name]
    return [ROOT / controller / NAME / name for controller in ("pids", "memory", "cpu")]


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
