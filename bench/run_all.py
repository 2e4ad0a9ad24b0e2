"""Run every benchmark in bench/ in order and print one combined summary at the end.

Order: image_sizes, probe_speed, readiness_lag, then diagnose_time (when bench/diagnose_time.py
exists). Each runs through its own ``main()``, in this process, one after the other -- never
in parallel, since they would measure each other on a 2-core machine. Each script prints its
own tables and writes test-output/bench/<name>.json; the summary at the end repeats the
headline lines from those files (only from files written during this run, so a script that
failed never shows stale figures).

How to read it
  "ok" means the script measured and wrote its figures; goals are reported in its lines
  (met / MISSED), never asserted. The exit status is non-zero only when a script crashed
  (raised) or could not measure (returned non-zero) -- not when a goal was missed.

Run: .venv/bin/python bench/run_all.py   (about 3 minutes on 2 cores; `make bench` runs this)
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):  # run by path: make the repository importable (for bench._common)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import OUTPUT_DIR, REPO_ROOT, read_summary, write_json

BENCH_DIR = Path(__file__).resolve().parent
ORDER = ("image_sizes", "probe_speed", "readiness_lag", "diagnose_time")
OPTIONAL = {"diagnose_time"}


def run_one(name: str) -> tuple[str, float]:
    """Import bench/<name>.py and run its main(); returns (status, seconds)."""
    started = time.monotonic()
    try:
        module = importlib.import_module(f"bench.{name}")
        code = module.main()
    except Exception:  # a crash of one benchmark must not stop the others
        traceback.print_exc()
        return "CRASHED", time.monotonic() - started
    status = "ok" if code == 0 else f"FAILED (exit {code})"
    return status, time.monotonic() - started


def main() -> int:
    """Run the benchmarks in order; non-zero only if one crashed or could not measure."""
    names = [name for name in ORDER if name not in OPTIONAL or (BENCH_DIR / f"{name}.py").exists()]
    outcomes: list[tuple[str, str, float, list[str]]] = []
    for name in names:
        print(f"\n===== {name} =====", flush=True)
        json_path = OUTPUT_DIR / f"{name}.json"
        before = json_path.stat().st_mtime if json_path.exists() else None
        status, seconds = run_one(name)
        fresh = json_path.exists() and json_path.stat().st_mtime != before
        outcomes.append((name, status, seconds, read_summary(name) if fresh else []))

    print("\n===== summary =====")
    for name, status, seconds, lines in outcomes:
        print(f"{name}: {status} ({seconds:.0f} s)")
        for line in lines or ["(no figures from this run)"]:
            print(f"    {line}")
    write_json(
        "run_all",
        {
            "scripts": [
                {"name": name, "status": status, "seconds": round(seconds, 1), "summary": lines}
                for name, status, seconds, lines in outcomes
            ],
            "summary": [f"{name}: {status}" for name, status, _, _ in outcomes],
        },
    )
    print(f"\nwritten: {(OUTPUT_DIR / 'run_all.json').relative_to(REPO_ROOT)}")
    return 0 if all(status == "ok" for _, status, _, _ in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
