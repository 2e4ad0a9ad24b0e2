"""Runs inside the simulated Binder session (see test_binder_session.py); prints one JSON report.

Started as an unprivileged user with the Binder environment's Python, in a network namespace of
its own with no container engine anywhere. Like mybinder.org, something (Binder's own Jupyter)
already holds 0.0.0.0:8888. It asks `portbinding doctor` what is available, with and without
the process engine chosen, then executes lessons given on the command line with nbclient.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

CELL_TIMEOUT_S = 180
PORTBINDING = str(Path(sys.executable).parent / "portbinding")


def doctor(choose_process_engine: bool) -> dict[str, Any]:
    env = dict(os.environ)
    env.pop("PORTBINDING_ENGINE", None)
    if choose_process_engine:
        env["PORTBINDING_ENGINE"] = "process"
    done = subprocess.run(
        [PORTBINDING, "doctor"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    return {"exit": done.returncode, "text": done.stdout + done.stderr}


def problems(notebook: Any) -> list[str]:
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append(f"{output.get('ename')}: {output.get('evalue')}")
            elif output.get("name") == "stderr" and "Traceback" in output.get("text", ""):
                found.append(output["text"][-800:])
    return found


def run_lesson(path: Path) -> list[str]:
    notebook = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    try:
        client.execute()
    except CellExecutionError as exc:
        return [str(exc)[-1500:]]
    return problems(notebook)


def run_until_it_stops(path: Path) -> dict[str, Any]:
    """A lesson that cannot run all of itself here (07): where it stopped, what it said, and any
    error before that point. Cells after the stop are not run (that is what Run All does)."""
    notebook = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    stopped: dict[str, Any] = {"stopped_at": None, "said": "", "errors_before": [], "text_before": ""}
    try:
        client.execute()
    except CellExecutionError as exc:
        stopped["said"] = str(exc)[-2000:]
    ran = [cell for cell in notebook.cells if cell.cell_type == "code" and cell.get("execution_count")]
    for cell in ran:
        outputs = cell.get("outputs", [])
        # A course error is shown as HTML (the friendly-errors hook), so HTML counts as text here.
        text = "".join(
            str(o.get("text", ""))
            + "".join((o.get("data") or {}).get(kind, "") for kind in ("text/plain", "text/html"))
            for o in outputs
        )
        if cell is ran[-1] and stopped["said"]:
            # The cell Run All stopped at (a course error is shown as a message, not a traceback).
            stopped["stopped_at"] = cell.source
            stopped["said"] += "\n" + text
            break
        if any(o.get("name") == "stderr" and "Traceback" in o.get("text", "") for o in outputs):
            stopped["errors_before"].append(text[-800:])
        stopped["text_before"] += text
    return stopped


def main() -> int:
    binder_jupyter = socket.socket()  # what mybinder.org's own server holds in every pod
    binder_jupyter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    binder_jupyter.bind(("0.0.0.0", 8888))
    binder_jupyter.listen(8)
    report: dict[str, Any] = {
        "uid": os.getuid(),
        "doctor_without_engine": doctor(False),
        "doctor_process_engine": doctor(True),
        "lessons": {
            Path(p).stem: run_lesson(Path(p)) for p in sys.argv[1:] if not Path(p).stem.startswith("07")
        },
        "stopped": {
            Path(p).stem: run_until_it_stops(Path(p)) for p in sys.argv[1:] if Path(p).stem.startswith("07")
        },
    }
    print("BINDER_REPORT=" + json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
