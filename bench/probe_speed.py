"""How fast ``probe_http`` reaches a verdict, against spawning curl for the same check.

What it measures
  Three situations a learner meets, each on 127.0.0.1 only:
    ok           -- portbinding/notebook:1.0 published on 127.0.0.1:<free port>, GET /api
    reset/empty  -- portbinding/notebook-loopback:1.0 published the same way: docker-proxy
                    accepts, Jupyter listens on the container's loopback, the connection dies
    refused      -- a local port nothing listens on
  For each, N=50 calls of ``probe_http(url)`` and N=50 runs of
  ``curl -sS -o /dev/null --max-time 2 URL`` (a new process each time, as a notebook cell or
  a test that shells out to curl would do), alternated so that any drift of the machine hits
  both alike, after one unmeasured warm-up of each. Times are wall-clock per call
  (perf_counter around the call), in milliseconds: median and p95 (nearest rank).

How to read it
  speed-up = curl median / probe median (above 1: the probe is faster). "agree" says whether
  every probe verdict and every curl exit code fell in the same curl-style class
  (probe.OUTCOME_CLASS: 0 -> ok, 7 -> refused, 52/56 -> reset_or_empty); the classes matter
  more than the times, since a fast wrong verdict is worthless.

Readiness is waited for before measuring: wait_until_ready for the notebook; for the
loopback image, until Jupyter answers *inside* the container (``engine.exec`` of a urllib
call), since from the host it never answers.

Run: .venv/bin/python bench/probe_speed.py   (about 10 s)
"""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run by path: make the repository importable (for bench._common)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import describe, discard, run_benchmark, table, wait_until
from portbinding.command import parse_run
from portbinding.engine import Engine, free_port
from portbinding.probe import OUTCOME_CLASS, probe_http, wait_until_ready

NAME = "probe_speed"
N = 50
PROBE_TIMEOUT_S = 2.0  # the same budget curl gets with --max-time 2
SITUATION_BUDGET_S = 60.0  # a situation stops early (fewer samples, reported) past this
READY_TIMEOUT_S = 90.0

# curl's exit codes in the same classes as probe.OUTCOME_CLASS.
CURL_CLASS = {0: "ok", 7: "refused", 52: "reset_or_empty", 56: "reset_or_empty", 28: "timeout"}

INSIDE_CHECK = [
    "python3",
    "-c",
    "import urllib.request as u; u.urlopen('http://127.0.0.1:8888/api', timeout=2)",
]


def curl_command(url: str) -> list[str]:
    # --noproxy '*': an http_proxy in the environment must never carry these requests off
    # the machine; -q ignores any ~/.curlrc, so every run is the same command.
    return ["curl", "-q", "-sS", "-o", "/dev/null", "--max-time", "2", "--noproxy", "*", url]


def measure(url: str) -> dict[str, Any]:
    """N probe_http calls and N curl runs against ``url``, alternated; times in ms."""
    probe_ms: list[float] = []
    curl_ms: list[float] = []
    probe_classes: collections.Counter[str] = collections.Counter()
    curl_classes: collections.Counter[str] = collections.Counter()

    def one_probe() -> None:
        started = time.perf_counter()
        result = probe_http(url, timeout=PROBE_TIMEOUT_S)
        probe_ms.append((time.perf_counter() - started) * 1000.0)
        probe_classes[OUTCOME_CLASS[result.outcome]] += 1

    def one_curl() -> None:
        started = time.perf_counter()
        done = subprocess.run(curl_command(url), capture_output=True, timeout=10, check=False)
        curl_ms.append((time.perf_counter() - started) * 1000.0)
        curl_classes[CURL_CLASS.get(done.returncode, f"exit {done.returncode}")] += 1

    # Warm-up, not counted: the first call pays for imports, page faults and curl's first
    # exec from disk, which no later call does.
    warm_up: list[Callable[[], None]] = [one_probe, one_curl]
    for call in warm_up:
        call()
    probe_ms.clear()
    curl_ms.clear()
    probe_classes.clear()
    curl_classes.clear()

    deadline = time.monotonic() + SITUATION_BUDGET_S
    for _ in range(N):
        if time.monotonic() > deadline:
            break
        one_probe()
        one_curl()

    probe = describe(probe_ms)
    curl = describe(curl_ms)
    classes = set(probe_classes) | set(curl_classes)
    return {
        "url": url,
        "probe_ms": probe,
        "curl_ms": curl,
        "speedup": round(float(curl["median"]) / float(probe["median"]), 1),
        "probe_classes": dict(probe_classes),
        "curl_classes": dict(curl_classes),
        "agree": len(classes) == 1,
    }


def run(engine: Engine) -> dict[str, Any]:
    """Start both notebooks, wait for readiness, measure the three situations."""
    if shutil.which("curl") is None:
        raise RuntimeError("curl is not installed, so there is nothing to compare with")
    ok_port, loopback_port = free_port(), free_port()
    started = []
    try:
        notebook = engine.run(
            parse_run(f"docker run -d -p 127.0.0.1:{ok_port}:8888 portbinding/notebook:1.0")
        )
        started.append(notebook)
        loopback = engine.run(
            parse_run(f"docker run -d -p 127.0.0.1:{loopback_port}:8888 portbinding/notebook-loopback:1.0")
        )
        started.append(loopback)

        ready = wait_until_ready(engine, notebook, 8888, path="/api", timeout=READY_TIMEOUT_S)
        if not ready.ok:
            raise RuntimeError(f"the notebook never answered: {ready.detail}")
        wait_until(
            lambda: engine.exec(loopback, INSIDE_CHECK, timeout=5).exit_code == 0,
            timeout=READY_TIMEOUT_S,
            what="Jupyter answering inside the loopback container",
        )

        # A port the kernel just handed out and released: nothing listens on it (the tiny
        # race with another program grabbing it is checked by the verdicts below).
        refused_port = free_port()
        situations = {
            "ok": f"http://127.0.0.1:{ok_port}/api",
            "reset/empty": f"http://127.0.0.1:{loopback_port}/api",
            "refused": f"http://127.0.0.1:{refused_port}/api",
        }
        results = {name: measure(url) for name, url in situations.items()}
    finally:
        for container in started:
            discard(engine, container)

    summary = [
        f"{name}: probe median {r['probe_ms']['median']:.1f} ms (p95 {r['probe_ms']['p95']:.1f}) vs curl "
        f"{r['curl_ms']['median']:.1f} ms (p95 {r['curl_ms']['p95']:.1f}): {r['speedup']}x"
        + (
            ""
            if r["agree"]
            else f" -- VERDICTS DISAGREE: probe {r['probe_classes']}, curl {r['curl_classes']}"
        )
        for name, r in results.items()
    ]
    return {"n": N, "situations": results, "summary": summary}


def report(figures: dict[str, Any]) -> str:
    rows = [
        [
            name,
            r["probe_ms"]["n"],
            r["probe_ms"]["median"],
            r["probe_ms"]["p95"],
            r["curl_ms"]["median"],
            r["curl_ms"]["p95"],
            r["speedup"],
            "/".join(sorted(r["probe_classes"])),
            "/".join(sorted(r["curl_classes"])),
            bool(r["agree"]),
        ]
        for name, r in figures["situations"].items()
    ]
    headers = [
        "situation",
        "n",
        "probe med ms",
        "probe p95 ms",
        "curl med ms",
        "curl p95 ms",
        "speed-up",
        "probe verdict",
        "curl verdict",
        "agree",
    ]
    return "\n".join(
        [
            "probe_http vs curl: time to a verdict (wall clock per call)",
            table(headers, rows, decimals=[0, 0, 2, 2, 2, 2, 1, 0, 0, 0]),
            "speed-up = curl median / probe median; verdicts in curl's classes (probe.OUTCOME_CLASS)",
        ]
    )


def main() -> int:
    """Measure, print the table, write test-output/bench/probe_speed.json; 0 unless it could not measure."""
    return run_benchmark(NAME, run, report)


if __name__ == "__main__":
    sys.exit(main())
