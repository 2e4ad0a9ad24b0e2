"""The challenge widget in a real kernel under nbclient: clicks, its worker and its watcher thread.

ipykernel drops output written from background threads, so the widget must reach the page
through widget state only; this runs a notebook as "Run All" would, clicking the widget's
buttons from cells, and reads the verdict the watcher thread set.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import docker
import nbformat
from nbclient import NotebookClient

CELL_TIMEOUT_S = 180


def _cells(data_dir: Path) -> list[str]:
    return [
        f"import os\nos.environ['PORTBINDING_DATA_DIR'] = {str(data_dir)!r}\n"
        "from portbinding.widgets import ChallengeWidget, end_lesson\n"
        "challenge = ChallengeWidget(causes=['not_published', 'crashed'])\nchallenge",
        "challenge._start.click()\nassert challenge.wait_idle(120), 'Start did not finish'\n"
        "print(challenge.message)",
        "challenge._rung_buttons['published'].click()\nassert challenge.wait_idle(60)\n"
        "print(challenge.rung_text)",
        "challenge._layer.value, challenge._cause.value = 'published', 'not_published'\n"
        "challenge._commit.click()\nassert challenge.wait_idle(30)\n"
        "for _ in range(3):\n    challenge._hint.click()\n    assert challenge.wait_idle(60)\n"
        "print(challenge.hints_given[-1].text)",
        "challenge._run.click()\nassert challenge.wait_idle(60), 'Run did not finish'\n"
        "assert challenge.wait_solved(60), challenge.verdict\nprint('VERDICT', challenge.verdict)",
        "import json\nsession = challenge.engine.session\nchallenge._end.click()\n"
        "assert challenge.wait_idle(60)\n"
        "end_lesson()\nprint('RESULT ' + json.dumps({'session': session, 'message': challenge.message}))",
    ]


def _text(cell: Any) -> str:
    return "".join(
        str(o.get("text", "")) for o in cell.get("outputs", []) if o.get("output_type") == "stream"
    )


def test_the_widget_runs_a_challenge_to_solved_in_a_kernel(
    tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    notebook = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in _cells(tmp_path)]  # type: ignore[no-untyped-call]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"a cell failed: {errors}"
    widget_view = notebook.cells[0]["outputs"][0]["data"]
    assert "application/vnd.jupyter.widget-view+json" in widget_view, (
        f"the widget did not render: {widget_view}"
    )
    assert "started." in _text(notebook.cells[1]), _text(notebook.cells[1])
    assert _text(notebook.cells[2]).startswith("$ docker port"), _text(notebook.cells[2])
    assert "Paste into a terminal" in _text(notebook.cells[3]), _text(notebook.cells[3])
    verdict = _text(notebook.cells[4])
    assert "VERDICT ✓ Solved" in verdict, f"the watcher thread's verdict did not reach the kernel: {verdict}"
    result = json.loads(_text(notebook.cells[5]).split("RESULT ", 1)[1])
    assert result["message"].startswith("Ended (solved)"), result
    left = docker_client.containers.list(
        all=True, filters={"label": f"portbinding.session={result['session']}"}
    )
    assert not left, f"the notebook left containers: {[c.name for c in left]}"
