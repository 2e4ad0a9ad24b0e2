"""Full diagnosis time per cause: how long ``diagnose()`` takes to name what is wrong.

What it measures
  For every scenario in portbinding.scenarios.SCENARIOS, one container is run from the
  scenario's own run line with a free host port (``s.with_host_port(free_port())``, no fixed
  name), brought into the state the scenario is about, and then
  ``diagnose(engine, container, container_port=s.container_port, expect=s.expect, path=s.path)``
  is timed 5 times in a row (wall clock, including every engine call and exec it makes).
  Bringing it into its state:
    * crashed         -- wait until the container has exited (docker's wait: no polling)
    * still_starting  -- nothing: diagnosed right after it runs (STARTUP_DELAY=30 keeps it there)
    * Jupyter images  -- wait until Jupyter logs "is running at" (it listens, on whatever port
                         and address the scenario gives it)
  One deviation from the scenarios' run lines: every published port is bound to 127.0.0.1
  instead of all interfaces, so nothing here is reachable from other machines. The diagnosis
  reads the same either way (the host probe goes to 127.0.0.1 in both cases).

How to read it
  median and max in ms per cause; goal: median <= 1000 ms for each. "diagnosed" lists the
  causes diagnose() returned over the 5 runs; a cause that differs from the scenario's is
  printed as MISMATCH -- that is a wrong diagnosis, reported, not hidden.

Run: .venv/bin/python bench/diagnose_time.py   (under a minute)
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from docker.models.containers import Container

if __package__ in (None, ""):  # run by path: make the repository importable (for bench._common)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import describe, discard, run_benchmark, table, wait_until
from portbinding.diagnose import diagnose
from portbinding.engine import Engine, free_port
from portbinding.scenarios import SCENARIOS, Scenario

NAME = "diagnose_time"
REPEATS = 5
GOAL_MS = 1000.0
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


def measure(engine: Engine, scenario: Scenario) -> dict[str, Any]:
    spec = scenario.with_host_port(free_port())  # published on 127.0.0.1 only
    container = engine.run(spec)
    try:
        waited_for = bring_into_state(engine, container, scenario)
        times_ms: list[float] = []
        causes: list[str] = []
        for _ in range(REPEATS):
            started = time.perf_counter()
            found = diagnose(
                engine, container, container_port=scenario.container_port, expect=scenario.expect,
                path=scenario.path,
            )  # fmt: skip
            times_ms.append((time.perf_counter() - started) * 1000.0)
            causes.append(found.cause)
    finally:
        discard(engine, container)
    stats = describe(times_ms)
    return {
        "scenario": scenario.id,
        "expected": scenario.cause,
        "run": spec.to_cli(),
        "waited_for": waited_for,
        "diagnosed": dict(Counter(causes)),
        "match": all(cause == scenario.cause for cause in causes),
        "times_ms": [round(value, 1) for value in times_ms],
        "median_ms": stats["median"],
        "max_ms": stats["max"],
        "goal_met": float(stats["median"]) <= GOAL_MS,
    }


def run(engine: Engine) -> dict[str, Any]:
    # One scenario at a time: eight Jupyter servers at once would measure the 2-core machine.
    results = [measure(engine, scenario) for scenario in SCENARIOS]
    mismatches = [r for r in results if not r["match"]]
    slow = [r for r in results if not r["goal_met"]]
    summary = [f"{r['scenario']}: median {r['median_ms']:.0f} ms, max {r['max_ms']:.0f} ms" for r in results]
    summary.append(
        f"goal: median <= {GOAL_MS:.0f} ms per cause: "
        + ("met for all" if not slow else "MISSED for " + ", ".join(r["scenario"] for r in slow))
    )
    summary.append(
        "diagnosis: all causes matched"
        if not mismatches
        else "MISMATCH: " + "; ".join(f"{r['scenario']} diagnosed as {r['diagnosed']}" for r in mismatches)
    )
    return {
        "repeats": REPEATS,
        "goal_ms": GOAL_MS,
        "results": results,
        "all_matched": not mismatches,
        "goal_met": not slow,
        "summary": summary,
    }


def report(figures: dict[str, Any]) -> str:
    rows = [
        [
            r["scenario"],
            r["expected"],
            ", ".join(f"{cause} x{count}" for cause, count in r["diagnosed"].items()),
            "ok" if r["match"] else "MISMATCH",
            r["median_ms"],
            r["max_ms"],
            bool(r["goal_met"]),
        ]
        for r in figures["results"]
    ]
    lines = [
        f"diagnose(): wall time per call, {figures['repeats']} calls per cause",
        table(["scenario", "expected cause", "diagnosed", "match", "median ms", "max ms", "<= 1 s"], rows,
              decimals=[0, 0, 0, 0, 0, 0, 0]),
    ]  # fmt: skip
    for r in figures["results"]:
        if not r["match"]:
            lines.append(f"MISMATCH: {r['scenario']} should be {r['expected']}, diagnosed {r['diagnosed']}")
    lines.extend(figures["summary"][-2:])
    return "\n".join(lines)


def main() -> int:
    """Measure, print the table, write test-output/bench/diagnose_time.json; 0 unless it could not measure."""
    return run_benchmark(NAME, run, report)


if __name__ == "__main__":
    sys.exit(main())
