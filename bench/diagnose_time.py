"""Full diagnosis time per cause: diagnose() the fast way, through a helper container, and by hand.

What it measures
  For every scenario in portbinding.scenarios.SCENARIOS, one container is run from the
  scenario's own run line with a free host port (``s.with_host_port(free_port())``, no fixed
  name), brought into the state the scenario is about, and then, in turn:
    * auto   -- ``diagnose(engine, container, container_port=..., expect=..., path=...)`` timed
                REPEATS times (wall clock, every engine call, exec, /proc read and probe in it):
                the way the CLI, the widgets and the grader call it (on this machine, as root,
                it looks inside through /proc);
    * helper -- the same with ``via="helper"``: a course container joined to the target's
                network namespace does the looking, the way that works on any engine;
    * by hand -- the commands a learner would type to gather the same evidence, run in
                sequence with subprocess: ``docker ps -a``, ``docker port``, ``docker logs``,
                then the commands the diagnosis's own trail shows for the listeners, the
                request inside and the ``curl -v`` from the host (HAND_REPEATS times).
  Bringing it into its state:
    * crashed         -- wait until the container has exited (docker's wait: no polling)
    * still_starting  -- nothing: diagnosed right after it runs (STARTUP_DELAY keeps it there)
    * Jupyter images  -- wait until Jupyter logs "is running at"
  Every published port is bound to 127.0.0.1, so nothing here is reachable from other machines.

How to read it
  median and max in ms per cause; goals: auto median <= 300 ms, helper median <= 1000 ms for
  each cause. "diagnosed" lists the causes over the auto runs; one that differs from the
  scenario's is printed as MISMATCH -- a wrong diagnosis, reported, not hidden.

Run: .venv/bin/python bench/diagnose_time.py   (about a minute)
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from docker.models.containers import Container

if __package__ in (None, ""):  # run by path: make the repository importable (for bench._common)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import describe, discard, run_benchmark, table, wait_until
from portbinding.diagnose import Diagnosis, Via, diagnose
from portbinding.engine import Engine, free_port
from portbinding.scenarios import SCENARIOS, Scenario

NAME = "diagnose_time"
REPEATS = 5
HAND_REPEATS = 3
GOAL_AUTO_MS = 300.0
GOAL_HELPER_MS = 1000.0
STATE_TIMEOUT_S = 60.0
JUPYTER_LISTENING = "is running at"  # Jupyter Server logs this once its socket listens


def bring_into_state(engine: Engine, container: Container, scenario: Scenario) -> str:
    """Wait until the container shows what ``scenario`` is about; returns what was waited for."""
    if scenario.cause == "crashed":
        # The engine's own wait returns when the container exits: an event, not a poll.
        container.wait(timeout=STATE_TIMEOUT_S)
        return "exited"
    if scenario.cause == "still_starting":
        return "nothing (diagnosed at once)"
    if scenario.expect == "jupyter":
        wait_until(
            lambda: JUPYTER_LISTENING in engine.logs(container, tail=60),
            timeout=STATE_TIMEOUT_S,
            what=f"{scenario.id}: Jupyter listening",
        )
        return "Jupyter listening"
    raise RuntimeError(f"no way to bring scenario {scenario.id!r} into its state: add one here")


def timed(
    engine: Engine, container: Container, scenario: Scenario, via: Via
) -> tuple[list[float], list[Diagnosis]]:
    times_ms: list[float] = []
    found: list[Diagnosis] = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        found.append(
            diagnose(engine, container, container_port=scenario.container_port, expect=scenario.expect,
                     path=scenario.path, via=via)
        )  # fmt: skip
        times_ms.append((time.perf_counter() - started) * 1000.0)
    return times_ms, found


def by_hand(engine: Engine, found: Diagnosis) -> tuple[list[str], list[float]]:
    """The learner's commands for the same evidence, and their wall time in sequence (ms)."""
    cli = found.evidence.commands()
    commands = [cli.ps(), cli.port(), cli.logs()]
    commands += [
        item.command for item in found.evidence.trail() if item.layer in ("listening", "inside", "host")
    ]
    env = {**os.environ, "DOCKER_HOST": engine.info.url}
    times_ms = []
    for _ in range(HAND_REPEATS):
        started = time.perf_counter()
        for command in commands:
            subprocess.run(shlex.split(command), capture_output=True, timeout=30, check=False, env=env)
        times_ms.append((time.perf_counter() - started) * 1000.0)
    return commands, times_ms


def measure(engine: Engine, scenario: Scenario) -> dict[str, Any]:
    spec = scenario.with_host_port(free_port())  # published on 127.0.0.1 only
    container = engine.run(spec)
    try:
        waited_for = bring_into_state(engine, container, scenario)
        auto_ms, auto = timed(engine, container, scenario, "auto")
        helper_ms, helper = timed(engine, container, scenario, "helper")
        commands, hand_ms = by_hand(engine, auto[-1])
    finally:
        discard(engine, container)
    causes = [found.cause for found in auto]
    auto_stats, helper_stats, hand_stats = describe(auto_ms), describe(helper_ms), describe(hand_ms)
    return {
        "scenario": scenario.id,
        "expected": scenario.cause,
        "run": spec.to_cli(),
        "waited_for": waited_for,
        "looked_inside": sorted({found.evidence.look for found in auto}),
        "diagnosed": dict(Counter(causes)),
        "helper_diagnosed": dict(Counter(found.cause for found in helper)),
        "match": all(cause == scenario.cause for cause in causes),
        "helper_match": all(found.cause == scenario.cause for found in helper),
        "times_ms": [round(value, 1) for value in auto_ms],
        "median_ms": auto_stats["median"],
        "max_ms": auto_stats["max"],
        "helper_times_ms": [round(value, 1) for value in helper_ms],
        "helper_median_ms": helper_stats["median"],
        "by_hand_commands": commands,
        "by_hand_median_ms": hand_stats["median"],
        "goal_met": float(auto_stats["median"]) <= GOAL_AUTO_MS,
        "helper_goal_met": float(helper_stats["median"]) <= GOAL_HELPER_MS,
    }


def run(engine: Engine) -> dict[str, Any]:
    # One scenario at a time: eight Jupyter servers at once would measure the 2-core machine.
    results = [measure(engine, scenario) for scenario in SCENARIOS]
    mismatches = [r for r in results if not (r["match"] and r["helper_match"])]
    slow = [r for r in results if not r["goal_met"]]
    slow_helper = [r for r in results if not r["helper_goal_met"]]
    summary = [
        f"{r['scenario']}: median {r['median_ms']:.0f} ms, helper {r['helper_median_ms']:.0f} ms, "
        f"by hand {r['by_hand_median_ms']:.0f} ms"
        for r in results
    ]
    summary.append(
        f"goal: median <= {GOAL_AUTO_MS:.0f} ms per cause: "
        + ("met for all" if not slow else "MISSED for " + ", ".join(r["scenario"] for r in slow))
    )
    summary.append(
        f"goal: helper median <= {GOAL_HELPER_MS:.0f} ms per cause: "
        + (
            "met for all"
            if not slow_helper
            else "MISSED for " + ", ".join(r["scenario"] for r in slow_helper)
        )
    )
    summary.append(
        "diagnosis: all causes matched, both ways"
        if not mismatches
        else "MISMATCH: " + "; ".join(f"{r['scenario']} diagnosed as {r['diagnosed']}" for r in mismatches)
    )
    return {
        "repeats": REPEATS,
        "goal_ms": GOAL_AUTO_MS,
        "helper_goal_ms": GOAL_HELPER_MS,
        "results": results,
        "all_matched": not mismatches,
        "goal_met": not slow and not slow_helper,
        "summary": summary,
    }


def report(figures: dict[str, Any]) -> str:
    rows = [
        [
            r["scenario"],
            ", ".join(f"{cause} x{count}" for cause, count in r["diagnosed"].items()),
            "ok" if r["match"] and r["helper_match"] else "MISMATCH",
            "/".join(r["looked_inside"]),
            r["median_ms"],
            r["max_ms"],
            r["helper_median_ms"],
            r["by_hand_median_ms"],
        ]
        for r in figures["results"]
    ]
    lines = [
        f"diagnose(): wall time per call, {figures['repeats']} calls per cause and way; by hand: the "
        "learner's docker/curl commands for the same evidence, in sequence",
        table(["scenario", "diagnosed", "match", "looked via", "auto median ms", "auto max ms",
               "helper median ms", "by hand median ms"], rows, decimals=[0, 0, 0, 0, 0, 0, 0, 0]),
    ]  # fmt: skip
    for r in figures["results"]:
        if not (r["match"] and r["helper_match"]):
            lines.append(
                f"MISMATCH: {r['scenario']} should be {r['expected']}, diagnosed {r['diagnosed']} "
                f"(helper: {r['helper_diagnosed']})"
            )
    lines.extend(figures["summary"][-3:])
    return "\n".join(lines)


def main() -> int:
    """Measure, print the table, write test-output/bench/diagnose_time.json; 0 unless it could not measure."""
    return run_benchmark(NAME, run, report)


if __name__ == "__main__":
    sys.exit(main())
