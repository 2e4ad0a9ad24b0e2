"""exercises/ holds exactly what nbgrader releases from grader/source (no solutions, no hidden tests)."""

from __future__ import annotations

import json

from portbinding.grading.course import Course, exercise_differences
from tests.support.checkout import REPO


def test_student_versions_match_what_generate_assignment_releases() -> None:
    """Regenerating the student versions into a scratch course gives byte-identical notebooks."""
    problems = exercise_differences(Course(REPO / "grader"), REPO / "exercises")
    assert not problems, "exercises/ is out of date; run `portbinding exercises`:\n" + "\n".join(problems)


def test_student_versions_hold_no_solutions_and_no_hidden_tests() -> None:
    """Nothing between BEGIN/END SOLUTION or BEGIN/END HIDDEN TESTS reaches students."""
    notebooks = sorted((REPO / "exercises").glob("*/*.ipynb"))
    assert len(notebooks) == 4, notebooks
    for path in notebooks:
        text = "".join("".join(cell["source"]) for cell in json.loads(path.read_text())["cells"])
        for marker in (
            "BEGIN SOLUTION",
            "END SOLUTION",
            "BEGIN HIDDEN TESTS",
            "--ServerApp.ip=0.0.0.0",
            "MODEL_PATH=",
            "redis://db:6379",
        ):
            assert marker not in text, f"{path.name} leaks {marker!r}"
        assert "raise NotImplementedError()" in text
