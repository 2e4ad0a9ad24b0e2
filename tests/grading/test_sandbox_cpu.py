"""A grading sandbox gets a share of the CPU, not the machine: one submission's busy processes
must not starve the submissions graded beside it (cgroups.make, the cpu controller)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from portbinding.grading import cgroups
from portbinding.probe import wait_until

BUSY = "while True: pass"


def test_a_sandbox_cgroup_throttles_a_busy_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a tiny quota, a process spinning in the group is throttled (cpu.stat says so)."""
    if os.geteuid() != 0:
        pytest.fail("cgroups need root")
    # A parent of its own: the grading tests of other runs watch portbinding-grading/ for leftovers.
    monkeypatch.setattr(cgroups, "NAME", "portbinding-grading-test")
    name = f"cpu-{os.environ.get('PORTBINDING_RUN_ID', os.getpid())}"
    groups = cgroups.make(name, pids=16, memory_mb=64, cpus=0.01)
    busy = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        cpu = [g for g in groups if "cpu" in g.parts or (g / "cpu.max").exists()]
        assert cpu, f"no cpu group among {groups}"
        for group in groups:
            (group / "cgroup.procs").write_text(str(busy.pid))

        def stat() -> dict[str, str]:
            return dict(line.split() for line in (cpu[0] / "cpu.stat").read_text().splitlines())

        throttled = wait_until(lambda: int(stat()["nr_throttled"]) > 0, timeout=5.0)
        assert throttled, f"a busy process in the sandbox's group was not throttled in 5 s: {stat()}"
    finally:
        busy.kill()
        busy.wait(10)
        for group in groups:
            cgroups.remove(group)
        for group in groups:
            assert not group.exists(), f"{group} outlived the test"
        for parent in {g.parent for g in groups}:
            if parent.name == "portbinding-grading-test":
                with contextlib.suppress(OSError):  # another run's test may be using it
                    Path(parent).rmdir()
