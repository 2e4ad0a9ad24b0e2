"""Shared plumbing for the benchmark scripts: statistics, tables, JSON output, bounded waits.

Not a benchmark itself. Every script in bench/ prints a plain-text table and writes the same
figures to ``test-output/bench/<name>.json``; the helpers here keep the two in step and give
``run_all.py`` one ``summary`` list per script to print at the end.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from portbinding import probe
from portbinding.engine import Engine

REPO_ROOT = Path(__file__).resolve().parents[1]
OUTPUT_DIR = REPO_ROOT / "test-output" / "bench"


# ------------------------------------------------------------------------------ statistics


def percentile(values: Sequence[float], pct: float) -> float:
    """The nearest-rank percentile: the smallest sample with at least ``pct`` % at or below it.

    Nearest-rank (not interpolation) on purpose: with 5-50 samples every reported figure is
    a time that was really observed, and p95 of 7 samples is honestly the maximum.
    """
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[rank - 1]


def describe(values: Sequence[float]) -> dict[str, float | int]:
    """n, median, p95, min and max of ``values`` (rounded for reading; NaN when empty)."""
    if not values:
        return {"n": 0, "median": math.nan, "p95": math.nan, "min": math.nan, "max": math.nan}
    return {
        "n": len(values),
        "median": round(statistics.median(values), 3),
        "p95": round(percentile(values, 95), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


# ------------------------------------------------------------------------------ output


def table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], *, decimals: Sequence[int] | None = None
) -> str:
    """A plain-text table, numbers right-aligned, everything else left-aligned.

    Floats get ``decimals[column]`` decimals (1 by default); NaN shows as n/a, None as -.
    """
    places = list(decimals) if decimals is not None else [1] * len(headers)
    cells = [[_cell(value, places[index]) for index, value in enumerate(row)] for row in rows]
    widths = [len(header) for header in headers]
    for row in cells:
        for index, text in enumerate(row):
            widths[index] = max(widths[index], len(text))
    # A column is right-aligned when every value in it is a number (blanks allowed).
    numeric = [
        any(_is_number(row[index]) for row in rows)
        and all(_is_number(row[index]) or row[index] is None for row in rows)
        for index in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            value.rjust(widths[index]) if numeric[index] else value.ljust(widths[index])
            for index, value in enumerate(values)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(list(headers)), rule, *(line(row) for row in cells)])


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(value: object, places: int) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:,.{places}f}"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if value is None:
        return "-"
    return str(value)


def environment() -> dict[str, object]:
    """Where the figures were measured: they mean little without the machine they came from."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        # Read as the figures are written: the 5- and 15-minute averages say how busy the
        # machine was while they were measured (other work on it slows every figure).
        "load_average_1_5_15_min": [round(load, 1) for load in os.getloadavg()],
    }


def write_json(name: str, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus when and where) to test-output/bench/<name>.json; return the path."""
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": name,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "environment": environment(),
        **payload,
    }
    path = OUTPUT_DIR / f"{name}.json"
    # NaN is not JSON: write null instead, so other tools can read the file.
    path.write_text(json.dumps(_json_safe(document), indent=2) + "\n")
    return path


def _json_safe(value: object) -> object:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def read_summary(name: str) -> list[str]:
    """The ``summary`` lines a script wrote to its JSON file (empty if there is none)."""
    path = OUTPUT_DIR / f"{name}.json"
    try:
        found = json.loads(path.read_text()).get("summary", [])
    except (OSError, ValueError):
        return []
    return [str(line) for line in found] if isinstance(found, list) else []


# ------------------------------------------------------------------------------ waiting


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str) -> float:
    """Poll ``condition`` with the course's own back-off (probe.wait_until); seconds it took.

    Raises TimeoutError naming ``what`` when the condition is still False after ``timeout``.
    """
    started = time.monotonic()
    if not probe.wait_until(condition, timeout=timeout, max_interval=0.1):
        raise TimeoutError(f"{what}: not reached within {timeout:g} s")
    return time.monotonic() - started


def discard(engine: Engine, container: Any) -> None:
    """Remove a benchmark's container (Engine.remove already accepts one that is gone)."""
    engine.remove(container)


def explain(exc: BaseException) -> str:
    """``exc`` and what it interrupted: an error raised while cleaning up (e.g. by Engine's
    ``__exit__``) would otherwise hide the error that caused the clean-up."""
    parts = [str(exc).strip()]
    seen: BaseException | None = exc.__context__
    while seen is not None and len(parts) < 4:
        parts.append(f"(while handling: {str(seen).strip()})")
        seen = seen.__context__
    return " ".join(parts)


def run_benchmark(
    name: str, measure: Callable[[Engine], dict[str, Any]], report: Callable[[dict[str, Any]], str]
) -> int:
    """The shared ``main()``: measure in an Engine session, print the report, write the JSON.

    Returns 0, or 1 when it could not measure (a missed goal is reported, not an error).
    """
    from portbinding.errors import PortBindingError

    try:
        with Engine.connect(owner="bench") as engine:
            figures = measure(engine)
    except (PortBindingError, RuntimeError, TimeoutError) as exc:
        print(f"{name}: could not measure: {explain(exc)}", file=sys.stderr)
        return 1
    print(report(figures))
    path = write_json(name, figures)
    print(f"\nwritten: {path.relative_to(REPO_ROOT)}")
    for line in read_summary(name):
        print(f"  {line}")
    return 0
