"""nbgrader's Validate button, as a student on their own machine uses it: their visible checks run.

The button calls nbgrader's ``Validator`` in the Jupyter server's folder (the workspace
``portbinding lab`` serves). Validation sets ``NBGRADER_EXECUTION=validate``; the checks must run
on the student's own engine then, and still refuse every other unsandboxed grading run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import docker
import pytest

from portbinding import lab
from portbinding.grading import check_fix
from portbinding.grading.protocol import DOOR_ENV
from portbinding.paths import course_material

EX01 = "ex01-unreachable-notebook"


def _solutions(assignment: str) -> dict[str, str]:
    """grade_id -> the instructors' answer (the solution region of each answer cell)."""
    source = json.loads(
        (course_material() / "grader/source" / assignment / f"{assignment}.ipynb").read_text()
    )
    answers = {}
    for cell in source["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and cell["cell_type"] == "code":
            lines = "".join(cell["source"]).splitlines()
            answers[meta["grade_id"]] = "\n".join(line for line in lines if "### " not in line) + "\n"
    return answers


def _answer(notebook: Path, answers: dict[str, str]) -> None:
    """Write ``answers`` into the student's answer cells, as the student would type them."""
    data = json.loads(notebook.read_text())
    filled = 0
    for cell in data["cells"]:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell["source"] = answers[grade_id]
            filled += 1
    assert filled == len(answers) > 0, f"{notebook.name}: filled {filled} of {len(answers)} answer cells"
    notebook.write_text(json.dumps(data))


def _validate(workspace: Path, notebook: Path, *, env: dict[str, str] | None = None) -> dict[str, object]:
    """Run nbgrader's Validator the way the server's Validate handler does: in the workspace."""
    script = "import json, sys\nfrom nbgrader.validator import Validator\n" + (
        "from nbgrader.apps import NbGrader\napp = NbGrader()\n"
        "app.config_file_paths.append([__import__('os').getcwd()])\napp.load_config_file()\n"
        "print('RESULT ' + json.dumps(Validator(config=app.config).validate(sys.argv[1])))"
    )
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    done = subprocess.run(
        [sys.executable, "-c", script, str(notebook)], cwd=workspace, capture_output=True, text=True,
        timeout=600, env={**(env or os.environ), "PATH": path},
    )  # fmt: skip
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line, (
        f"nbgrader validate did not finish ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    )
    result: dict[str, object] = json.loads(line.removeprefix("RESULT "))
    return result


def test_validate_runs_the_students_visible_checks_on_their_own_engine(
    tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    """ex01 answered right: Validate reports no failed cell (it refused to run the checks before)."""
    workspace = lab.prepare(tmp_path / "ws").root
    notebook = workspace / "exercises" / EX01 / f"{EX01}.ipynb"
    _answer(notebook, _solutions(EX01))
    result = _validate(workspace, notebook)
    cells = result.get("failed", [])
    failed = (
        [str(cell.get("error", ""))[-600:] for cell in cells if isinstance(cell, dict)]
        if isinstance(cells, list)
        else []
    )
    assert result == {}, "Validate failed an answer that grades full marks:\n" + "\n---\n".join(failed)


@pytest.mark.parametrize("execution", ["autograde", "validate", "something-new"])
def test_checks_refuse_an_unsandboxed_grading_run_that_is_not_a_validation(
    execution: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail closed: only nbgrader's own validation (both of its variables) runs checks locally."""
    monkeypatch.delenv(DOOR_ENV, raising=False)
    monkeypatch.delenv("NBGRADER_VALIDATING", raising=False)
    monkeypatch.setenv("NBGRADER_EXECUTION", execution)
    result = check_fix("docker run -d -p 8888:8888 portbinding/notebook:1.0", container_port=8888)
    assert not result.passed and result.cause == "grader_error", f"{execution}: {result}"
    assert "without the Port Binding Lab grading sandbox" in result.message, result.message
