"""ex04's test cells, run as a learner runs them (in-process, on this machine's Docker): the reference
file gets every point, each typical wrong file the points it earns, with feedback built from the
diagnosis of what broke -- never a bare "failed".

The cells are grader/source's own (visible part and hidden tests), executed on the answers. The
Compose files run as the judge runs them (hardened containers on a network of the check's own),
so these are real-engine tests of ex04's grading, apart from the sandbox around it (the round
trip runs ex04 under the sandbox and the door, hostile submissions included).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.grading.test_exercise_checks import cell_source, on_the_learners_machine, run_cell
from tests.support.checkout import REPO

__all__ = ["on_the_learners_machine"]  # the fixture, shared with the other exercise tests

pytestmark = pytest.mark.engines("docker", reason="ex04 runs Compose services on a network of their own")

EX04 = "ex04-compose-two-services"
GRADED = ("ex04-runs", "ex04-private", "ex04-db-private", "ex04-waits")
POINTS = {"ex04-runs": 4, "ex04-private": 1, "ex04-db-private": 1, "ex04-waits": 1}


def _answer(grade_id: str) -> str:
    """The reference answer cell's code, markers removed (what nbgrader's solution is)."""
    return "\n".join(line for line in cell_source(EX04, grade_id).splitlines() if "### " not in line)


def _file(**changes: str) -> str:
    namespace: dict[str, Any] = {}
    exec(_answer("ex04-compose-answer"), namespace)
    text = str(namespace["compose_file"])
    for old, new in changes.items():
        assert old in text, f"the reference file has no {old!r}"
        text = text.replace(old, new)
    return text


def _run(grade_id: str, namespace: dict[str, Any]) -> str | None:
    """None if the cell passes; else what a learner reads (nbgrader fails a cell on any exception:
    the policy's refusal of a file is one)."""
    try:
        exec(compile(cell_source(EX04, grade_id), grade_id, "exec"), namespace)
    except Exception as error:  # every exception is a failed cell, as in nbgrader
        return str(error)
    return None


def _mark(compose_file: str) -> tuple[int, dict[str, str | None]]:
    """Points and each graded cell's failure message (None: passed), cells run in notebook order."""
    namespace: dict[str, Any] = {"compose_file": compose_file}
    said = {grade_id: _run(grade_id, namespace) for grade_id in GRADED}
    return sum(POINTS[g] for g, message in said.items() if message is None), said


def test_the_reference_file_gets_every_point() -> None:
    points, said = _mark(_file())
    assert points == sum(POINTS.values()), f"the reference lost points: {said}"


WRONG: dict[str, tuple[dict[str, str], int, dict[str, tuple[str, ...]]]] = {
    "still localhost": (
        {"redis://db:": "redis://localhost:"},
        3,
        {"ex04-runs": ("localhost is api itself", "DATABASE_URL=redis://db:6379/0")},
    ),
    "a misspelt service name": (
        {"redis://db:": "redis://databse:"},
        3,
        {"ex04-runs": ("'databse'", "Use db", "DATABASE_URL=redis://db:6379/0")},
    ),
    "the database published to make it reachable": (
        {'expose:\n      - "6379"': 'ports:\n      - "127.0.0.1:6379:6379"'},
        6,
        {"ex04-db-private": ("published nowhere", "expose:")},
    ),
    "published on every address, waiting for started only": (
        {'"127.0.0.1:8050:50"': '"8050:50"', "condition: service_healthy": "condition: service_started"},
        5,
        {"ex04-private": ("this machine only",), "ex04-waits": ("service_healthy",)},
    ),
    "the ports entry unquoted again": (
        {'"127.0.0.1:8050:50"': "8050:50"},
        0,
        {"ex04-runs": ("483050", "Quote it"), "ex04-private": ("483050",)},
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(WRONG), ids=list(WRONG))
def test_typical_wrong_files_get_partial_marks_and_the_diagnosis_as_feedback(case: str) -> None:
    changes, expected_points, feedback = WRONG[case]
    points, said = _mark(_file(**changes))
    assert points == expected_points, f"{case}: {points} points, expected {expected_points}: {said}"
    for grade_id, words in feedback.items():
        message = said[grade_id] or ""
        for word in words:
            assert word in message, f"{case}: {grade_id}'s feedback lacks {word!r}:\n{message}"


def test_the_static_questions_are_answered_by_the_reference_and_not_by_a_guess() -> None:
    """Q2 (YAML 1.1's number) and Q3 (the cause): right with the reference, wrong with a guess."""
    for grade_id, answer_id, wrong in (
        ("ex04-yaml", "ex04-yaml-answer", {"yaml_reads": 805050}),
        ("ex04-cause", "ex04-cause-answer", {"database_cause": "not_published"}),
    ):
        namespace: dict[str, Any] = {}
        exec(_answer(answer_id), namespace)
        assert run_cell(EX04, grade_id, namespace) is None, f"{grade_id}: the reference answer fails"
        message = run_cell(EX04, grade_id, wrong)
        assert message, f"{grade_id}: {wrong} passed"


def test_the_released_exercise_gives_the_broken_file_and_no_solution() -> None:
    released = json.loads((REPO / "exercises" / EX04 / f"{EX04}.ipynb").read_text())
    text = "".join("".join(cell["source"]) for cell in released["cells"])
    assert "redis://localhost:6379/0" in text and "- 8050:50" in text, "the broken file is not given"
    assert "service_healthy" not in text.split("original_file", 1)[1].split("compose_file", 1)[0]
    assert "8050 * 60" not in text and "redis://db:6379" not in text, "a solution leaked"
