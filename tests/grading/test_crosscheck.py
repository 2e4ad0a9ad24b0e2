"""The cross-check reads each test cell's own check calls and holds the door's record to them.

No engine here: the requests are the ones the real check functions build (their door call
captured), as a test cell would send them, honestly or through a learner's wrapper. The round
trip grades the same attack end to end (``submissions/h-loose-check.toml``).
"""

from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import Any

import nbformat
import pytest

from portbinding.grading import checks, crosscheck
from portbinding.grading.protocol import CheckResult

SOURCE = Path(__file__).resolve().parents[2] / "grader" / "source"


def course_test_cells() -> list[tuple[str, str]]:
    """(grade_id, source) of every autograded test cell in grader/source."""
    found = []
    for path in sorted(SOURCE.glob("*/*.ipynb")):
        notebook = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
        for cell in notebook.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade") and not meta.get("solution") and crosscheck.calls_in(cell.source):
                found.append((str(meta["grade_id"]), str(cell.source)))
    return found


CELLS = course_test_cells()


class _Answers(dict[str, Any]):
    """A namespace where every name that is not a check function is the learner's answer."""

    def __init__(self, answer: object) -> None:
        super().__init__({name: function for name, (function, _) in crosscheck.CHECKS.items()})
        self.answer = answer

    def __missing__(self, key: str) -> object:
        return self.answer


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[dict[str, Any]]:
    """What the check functions send to the door (captured; every check 'passes' there)."""
    requests: list[dict[str, Any]] = []

    def door(request: dict[str, Any]) -> CheckResult:
        requests.append(request)
        return CheckResult(True, "ok", "passed at the door")

    monkeypatch.setattr(checks, "_call", door)
    (tmp_path / "Dockerfile").write_text("FROM python:3.12-slim\n")
    monkeypatch.chdir(tmp_path)  # check_image(".") reads the folder
    return requests


def run_calls(source: str, answer: object) -> None:
    """Make every check call of ``source`` as the cell would, with ``answer`` for each variable."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in crosscheck.CHECKS:
            eval(compile(ast.Expression(node), "<test cell>", "eval"), {}, _Answers(answer))


def recorded(requests: list[dict[str, Any]], *, passed: bool = True) -> list[dict[str, Any]]:
    """The ledger's events for ``requests``, as the door records them."""
    return [
        {"kind": r["kind"], "settings": crosscheck.request_settings(r), "passed": passed} for r in requests
    ]


@pytest.mark.parametrize(("grade_id", "source"), CELLS, ids=[c[0] for c in CELLS])
@pytest.mark.parametrize("answer", ["docker run -d -p 8888:8888 portbinding/notebook:1.0", "crashed", None])
def test_an_honest_test_cell_is_always_vouched_for(
    sent: list[dict[str, Any]], grade_id: str, source: str, answer: object
) -> None:
    """Whatever the answer, the requests a course test cell really sends match its own calls."""
    run_calls(source, answer)
    assert sent, f"{grade_id}: no request was built"
    assert crosscheck.verdict(source, recorded(sent)) is None, f"{grade_id}: an honest cell was failed"


def _cell(grade_id: str) -> str:
    return next(source for found, source in CELLS if found == grade_id)


LOOSER: list[tuple[str, dict[str, Any], str]] = [
    ("ex01-fixed-line", {"images": []}, "images=['portbinding/notebook-loopback']"),
    ("ex02-mapping", {"host_port": None}, "host_port=8888"),
    ("ex02-private", {"private": False}, "private=True"),
    ("ex02-conflict", {"occupied_host_ports": []}, "occupied_host_ports=[8888]"),
    ("ex02-random", {"random_host_port": False}, "random_host_port=True"),
    ("ex01-cause", {"line": "docker run -d -p 8000:8000 portbinding/crash-before-listen:1.0"}, "line="),
    ("ex01-config-line", {"image": "portbinding/notebook:1.0"}, "image='portbinding/notebook-loopback:1.0'"),
    ("ex03-image", {"path": "/"}, "path='/health'"),
    ("ex04-runs", {"database": False}, "database=True"),
    ("ex04-private", {"published": None}, "published='loopback'"),
    ("ex04-waits", {"waits": {}}, "waits={'db': 'service_healthy'}"),
]


@pytest.mark.parametrize(("grade_id", "change", "named"), LOOSER, ids=[f"{g}-{min(c)}" for g, c, _ in LOOSER])
def test_a_check_sent_with_looser_settings_does_not_vouch_for_the_cell(
    sent: list[dict[str, Any]], grade_id: str, change: dict[str, Any], named: str
) -> None:
    """A wrapper that reaches the real door without the question's settings: the test fails, naming them."""
    source = _cell(grade_id)
    run_calls(source, "docker run -d -p 8888:8888 portbinding/notebook:1.0")
    loosened = [{**request, **change} for request in sent]
    why = crosscheck.verdict(source, recorded(loosened))
    assert why is not None and "other settings" in why, f"{grade_id} passed with {change}: {why}"
    assert named in why, f"the reason should name the setting: {why}"


def test_every_test_cell_with_a_door_check_is_cross_checked() -> None:
    """The grader picks the cells to cross-check by name: every check function must be among them."""
    from portbinding.grading.execute import _CALLS_CHECK

    kinds = {call.kind for _, source in CELLS for call in crosscheck.calls_in(source) or []}
    assert kinds == {kind for _, kind in crosscheck.CHECKS.values()}, f"course cells use {kinds}"
    skipped = [grade_id for grade_id, source in CELLS if not _CALLS_CHECK.search(source)]
    assert not skipped, f"test cells calling a door check but not cross-checked: {skipped}"


def test_a_failed_or_missing_check_never_vouches(sent: list[dict[str, Any]]) -> None:
    """No request during the cell, or one that failed at the door: the cell fails whatever the kernel says."""
    source = _cell("ex01-fixed-line")
    assert "never reached" in str(crosscheck.verdict(source, []))
    run_calls(source, "x")
    assert "failed there" in str(crosscheck.verdict(source, recorded(sent, passed=False)))


def test_another_kind_of_check_does_not_stand_in_for_the_cells_own() -> None:
    """A passing check_config while the cell runs check_fix is not the cell's check."""
    during = [{"kind": "check_config", "settings": {"image": "portbinding/notebook:1.0", "path": "/api"},
               "passed": True}]  # fmt: skip
    why = crosscheck.verdict(_cell("ex01-fixed-line"), during)
    assert why is not None and "another kind of check" in why, why


def test_every_call_a_cell_always_makes_must_reach_the_door(sent: list[dict[str, Any]]) -> None:
    """Two calls with other settings: sending the easier one twice does not pass; an if-branch is optional."""
    source = (
        "a = check_fix(line, container_port=8888, host_port=8888)\n"
        "b = check_fix(line, container_port=8888, private=True)\n"
        "if a.passed:\n"
        "    c = check_fix(line, container_port=9999)\n"
    )
    run_calls("check_fix(line, container_port=8888, host_port=8888)", "x")
    twice = recorded(sent + sent)
    why = crosscheck.verdict(source, twice)
    assert why is not None and "never reached" in why, why
    sent.clear()
    run_calls(source.split("if")[0], "x")  # the two unconditional calls, as the cell makes them
    assert crosscheck.verdict(source, recorded(sent)) is None, "the conditional call must not be required"


def test_a_long_setting_is_kept_by_digest_and_matches_no_literal(sent: list[dict[str, Any]]) -> None:
    """The ledger keeps settings small; a line padded past the cap is not the question's line."""
    source = _cell("ex01-cause")
    run_calls(source, "loopback_only")
    padded = [{**r, "line": r["line"] + " " * 5000} for r in sent]
    settings = crosscheck.request_settings(padded[0])
    assert set(settings["line"]) == {"sha256"}, settings
    many = {"kind": "check_run", **{f"k{i}": 1 for i in range(10_000)}}
    assert len(repr(crosscheck.request_settings(many))) < 500, "unknown fields must not be kept"
    assert crosscheck.verdict(source, recorded(padded)) is not None


def test_a_cell_with_magics_is_read_as_ipython_runs_it() -> None:
    """IPython syntax (%time, !cmd) in a test cell does not hide its check calls."""
    calls = crosscheck.calls_in("!true\nr = check_fix(line, container_port=8888)\n%ls\n")
    assert calls and calls[0].settings["container_port"] == 8888, calls
    assert crosscheck.calls_in("def (") is None
    # Unreadable, or a call inside a magic's string: only passing checks at the door count, as before.
    hidden = "%time r = check_fix(line, container_port=8888)"
    assert crosscheck.verdict(hidden, []) is not None
    assert crosscheck.verdict(hidden, [{"kind": "check_run", "settings": {}, "passed": True}]) is None
    assert os.environ.get("PORTBINDING_GRADING_DOOR") is None  # the checks above never reached a door
