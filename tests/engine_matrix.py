"""The engine suite on every engine kind, and a table of the results (run by `make test`).

`make test` first runs the whole suite on Docker (writing test-output/engines/docker.xml). This
script then runs tests/engine on rootless Podman (set up by portbinding.podman) and on the
process engine, and prints one table: per engine, how many engine tests passed, failed, and
were deselected because they check something another kind only has (the reason is in the marker).
Exit status 1 when any engine had a failure or did not run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "test-output" / "engines"
DESELECTED_ENV = "PORTBINDING_DESELECTED_FILE"


@dataclass
class Row:
    engine: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    deselected: int = 0
    seconds: float = 0.0
    note: str = ""


def engine_results(junit: Path, engine: str) -> Row:
    """Counts of the tests/engine cases in a JUnit report."""
    row = Row(engine)
    if not junit.exists():
        row.note = f"no report at {junit.relative_to(REPO)}"
        row.failed = 1
        return row
    for case in ElementTree.parse(junit).iter("testcase"):
        if not str(case.get("classname", "")).startswith("tests.engine."):
            continue
        row.seconds += float(case.get("time", 0))
        if case.find("failure") is not None or case.find("error") is not None:
            row.failed += 1
        elif case.find("skipped") is not None:
            row.skipped += 1
        else:
            row.passed += 1
    deselected = junit.with_suffix(".deselected.json")
    if deselected.exists():
        row.deselected = len(json.loads(deselected.read_text()))
    return row


def run_suite(engine: str, env: dict[str, str]) -> Row:
    junit = OUTPUT / f"{engine}.xml"
    junit.unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "pytest",
        "tests/engine",
        "-q",
        f"--junitxml={junit}",
        "-p",
        "no:cacheprovider",
    ]
    print(f"\n=== the engine suite on {engine} ===", flush=True)
    subprocess.run(
        command,
        cwd=REPO,
        env={
            **os.environ,
            **env,
            "PORTBINDING_TEST_ENGINE": engine,
            DESELECTED_ENV: str(junit.with_suffix(".deselected.json")),
        },
        check=False,
        timeout=1800,
    )
    return engine_results(junit, engine)


def podman_env() -> dict[str, str] | str:
    from portbinding.errors import PortBindingError
    from portbinding.podman import ensure_podman

    try:
        return {"DOCKER_HOST": ensure_podman()}
    except PortBindingError as exc:
        return f"rootless Podman could not be set up: {exc}"


def table(rows: list[Row]) -> str:
    header = (
        f"{'engine':<10} {'passed':>7} {'failed':>7} {'skipped':>8} {'not for it':>11} {'seconds':>8}  note"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row.engine:<10} {row.passed:>7} {row.failed:>7} {row.skipped:>8} {row.deselected:>11} "
            f"{row.seconds:>8.0f}  {row.note}"
        )
    return "\n".join(lines)


def main() -> int:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    rows = [engine_results(OUTPUT / "docker.xml", "docker")]
    podman = podman_env()
    if isinstance(podman, str):
        rows.append(Row("podman", failed=1, note=podman))
    else:
        rows.append(run_suite("podman", podman))
    with tempfile.TemporaryDirectory(prefix="portbinding-process-") as cache:
        # A private process engine for the run, so a learner's own (in ~/.cache) is not touched.
        rows.append(run_suite("process", {"PORTBINDING_ENGINE": "process", "PORTBINDING_CACHE": cache}))
        from portbinding.process import launch

        os.environ["PORTBINDING_CACHE"] = cache
        launch.stop()
    print("\nThe engine suite per engine (tests/engine; 'not for it': deselected by an engines() marker):")
    print(table(rows))
    (OUTPUT / "table.txt").write_text(table(rows) + "\n")
    return 1 if any(row.failed or row.skipped or not row.passed for row in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
