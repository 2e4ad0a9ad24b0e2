"""portbinding grade's own limits: wall time per submission, unreadable submissions, root only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from portbinding.grading.course import Course, nbgrader_env, run_nbgrader
from tests.support.staging import Staged, bare_env, run_as

REPO = Path(__file__).resolve().parents[2]
PORTBINDING = str(Path(sys.executable).parent / "portbinding")
EX01 = "ex01-unreachable-notebook"


@pytest.fixture(scope="module")
def limited(grading_host: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Course, dict[str, Any]]:
    """ex01 graded with a 4 s limit per submission: a reference that runs out of time, and a broken file."""
    root = tmp_path_factory.mktemp("limits") / "course"
    root.mkdir()
    (root / "nbgrader_config.py").write_bytes((REPO / "grader" / "nbgrader_config.py").read_bytes())
    (root / "source").mkdir()
    subprocess.run(["cp", "-r", str(REPO / "grader" / "source" / EX01), str(root / "source")], check=True)
    run_nbgrader(["generate_assignment", EX01, "--force"], cwd=root)
    course = Course(root)
    for student, content in (("slow", (course.source(EX01) / f"{EX01}.ipynb").read_bytes()),
                             ("broken", b'{"cells": [ this is not json')):  # fmt: skip
        folder = course.submitted(student, EX01)
        folder.mkdir(parents=True)
        (folder / f"{EX01}.ipynb").write_bytes(content)
    result = subprocess.run(
        [PORTBINDING, "grade", EX01, "--time-limit", "4", "--course", str(root), "--json"],
        env=nbgrader_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    run_nbgrader(["generate_feedback", EX01, "--force"], cwd=root)
    return course, {o["student"]: o for o in json.loads(result.stdout)["submissions"]}


def test_a_submission_over_its_wall_time_is_stopped_and_graded_zero(
    limited: tuple[Course, dict[str, Any]],
) -> None:
    """Killed at --time-limit: zero, the reason in the feedback, and its sandbox and containers gone."""
    course, outcomes = limited
    assert outcomes["slow"]["score"] == 0.0 and outcomes["slow"]["status"] == "zero", outcomes["slow"]
    feedback = (course.root / "feedback" / "slow" / EX01 / f"{EX01}.html").read_text()
    assert "took longer than 4 s" in feedback
    assert "BEGIN SOLUTION" not in feedback, "the zero record must show the released notebook, not the source"
    left = [p.name for p in Path("/var/lib/portbinding-grading").iterdir() if (p / "session").exists()]
    assert not left, f"sandboxes left behind: {left}"


def test_an_unreadable_notebook_is_graded_zero_with_the_reason(
    limited: tuple[Course, dict[str, Any]],
) -> None:
    """A file that is not a notebook never reaches nbgrader: zero, saying why."""
    course, outcomes = limited
    assert outcomes["broken"]["score"] == 0.0, outcomes["broken"]
    assert "not a readable notebook" in outcomes["broken"]["notes"][0]
    assert (course.root / "feedback" / "broken" / EX01 / f"{EX01}.html").is_file()


def test_grading_without_root_is_refused_with_what_to_do(grading_host: Any, staged: Staged) -> None:
    """As an ordinary user, portbinding grade refuses and says a root grading machine is needed."""
    # The staged copy: the checkout and its venv may be where uid 65534 cannot read them.
    env = bare_env(PATH=f"{staged.venv / 'bin'}:/usr/bin:/bin")
    command = [*staged.cli(), "grade", EX01, "--course", str(staged.checkout / "grader")]
    result = run_as(command, env, user="65534", timeout=120)
    assert result.returncode == 4, (result.returncode, result.stderr)
    assert "needs root" in result.stderr and "dedicated grading machine" in result.stderr, result.stderr
    assert os.geteuid() == 0
