"""The exercises' test cells judge what they claim: answers that used to pass wrongly now fail.

Each test runs a test cell of grader/source exactly as written (visible part and hidden
tests) on an answer, the way a learner runs it on their own machine (the checks run
in-process, on this machine's engine). For every question the issue named, the answer that
passed wrongly before fails now, with a message that says why -- and the reference answer
still passes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from portbinding.grading.protocol import DOOR_ENV
from portbinding.settings import PUBLISH_HOST_ENV
from tests.support.checkout import REPO

NOTEBOOK = "portbinding/notebook:1.0"


def cell_source(assignment: str, grade_id: str) -> str:
    """The source of a test cell of grader/source (with its hidden tests)."""
    notebook = json.loads((REPO / "grader" / "source" / assignment / f"{assignment}.ipynb").read_text())
    (cell,) = [c for c in notebook["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id]
    return "".join(cell["source"])


def run_cell(assignment: str, grade_id: str, answers: dict[str, Any]) -> str | None:
    """None if the test cell passes with ``answers``, else the message it fails with."""
    namespace = dict(answers)
    try:
        exec(compile(cell_source(assignment, grade_id), grade_id, "exec"), namespace)
    except AssertionError as error:
        return str(error)
    return None


@pytest.fixture(autouse=True)
def on_the_learners_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """No door, not autograding: checks run in-process on this machine's engine, as a learner's do."""
    monkeypatch.delenv(DOOR_ENV, raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)


# ------------------------------------------------------------------------- ex03 Q3: readiness

SOLUTION_SOURCE = cell_source("ex03-twelve-factor-api", "ex03-readiness-answer")


def _poll(body: str) -> Any:
    """A ``wait_until_ready`` defined from ``body`` (the function's code, indented)."""
    namespace: dict[str, Any] = {}
    exec(
        "import time, urllib.request, urllib.error\n\ndef wait_until_ready(url, timeout):\n" + body, namespace
    )
    return namespace["wait_until_ready"]


URLERROR_ONLY = """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as reply:
                return reply.status == 200
        except urllib.error.URLError:
            time.sleep(0.1)
    return False
"""
ANY_ANSWER = """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return True
        except urllib.error.HTTPError:
            return True  # it answered, so it is up
        except OSError:
            time.sleep(0.1)
    return False
"""
BUSY = """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as reply:
                if reply.status == 200:
                    return True
        except OSError:
            pass
    return False
"""
GUESSED_SLEEP = """
    time.sleep(min(timeout, 2.5))
    try:
        with urllib.request.urlopen(url, timeout=1) as reply:
            return reply.status == 200
    except OSError:
        return False
"""


@pytest.mark.parametrize(
    ("body", "phrase"),
    [
        (URLERROR_ONLY, "RemoteDisconnected"),
        (ANY_ANSWER, "had not answered 200"),
        (BUSY, "busy loop"),
        (GUESSED_SLEEP, "a guessed sleep, not a poll"),
    ],
    ids=["catches-only-URLError", "503-counts-as-ready", "busy-loop", "guessed-sleep"],
)
def test_a_readiness_poll_that_passed_wrongly_now_fails(body: str, phrase: str) -> None:
    """docker-proxy's hang-ups (no URLError), a 503 while loading, a busy loop, a guessed sleep: all fail."""
    failed = run_cell("ex03-twelve-factor-api", "ex03-readiness", {"wait_until_ready": _poll(body)})
    assert failed is not None, "this wrong poll passed the test cell"
    assert phrase in failed or (phrase == "RemoteDisconnected" and "ConnectionResetError" in failed), failed
    assert "Next step" in failed, failed


def test_the_reference_readiness_poll_passes() -> None:
    """The solution in grader/source passes the visible and the hidden test."""
    namespace: dict[str, Any] = {}
    exec(compile(SOLUTION_SOURCE, "solution", "exec"), namespace)
    assert run_cell("ex03-twelve-factor-api", "ex03-readiness", namespace) is None


# --------------------------------------------------------------------- ex01 Q1, ex03 Q2: causes


@pytest.mark.parametrize(
    ("assignment", "grade_id", "variable", "wrong", "right"),
    [
        ("ex01-unreachable-notebook", "ex01-cause", "cause", "crashed", "loopback_only"),
        ("ex01-unreachable-notebook", "ex01-cause", "cause", "not_published", "loopback_only"),
        ("ex03-twelve-factor-api", "ex03-crash-cause", "crash_cause", "loopback_only", "crashed"),
    ],
)
def test_a_wrong_cause_fails_the_visible_test_with_the_evidence(
    assignment: str, grade_id: str, variable: str, wrong: str, right: str
) -> None:
    """The visible test runs the line: a wrong cause fails, showing each layer, not the answer."""
    visible = cell_source(assignment, grade_id).split("### BEGIN HIDDEN TESTS")[0]
    namespace: dict[str, Any] = {variable: wrong}
    with pytest.raises(AssertionError) as failed:
        exec(compile(visible, grade_id, "exec"), namespace)
    message = str(failed.value)
    assert f"you answered {wrong!r}" in message and "state " in message and "Next step" in message, message
    assert right not in message, f"the message gives the answer away: {message}"
    assert run_cell(assignment, grade_id, {variable: right}) is None


# ----------------------------------------------------------------------- ex02 Q2 and Q4: ports


@pytest.mark.parametrize(
    "line",
    [
        f"docker run -d -P {NOTEBOOK}",
        f"docker run -d -p 8888 {NOTEBOOK}",
        f"docker run -d -p 9999:8888 {NOTEBOOK}",
    ],
)
def test_host_port_8888_means_8888_not_one_the_engine_picks(line: str) -> None:
    """ex02 Q2 asks for http://localhost:8888/: -P and -p 8888 leave the host port to the engine."""
    failed = run_cell("ex02-port-mapping", "ex02-mapping", {"mapping_line": line})
    assert failed is not None and "Expected host port 8888" in failed, failed


@pytest.mark.parametrize("line", [f"docker run -d -p 8888:8888 {NOTEBOOK}", f"docker run -d -P {NOTEBOOK}",
                                  f"docker run -d -p 0.0.0.0:8888:8888 {NOTEBOOK}"])  # fmt: skip
def test_only_this_machine_fails_closed_where_the_network_address_cannot_be_tried(
    line: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ex02 Q4 where the network address cannot be tried (remote engine, no default route): still judged."""
    monkeypatch.setenv(PUBLISH_HOST_ENV, "127.0.0.2")  # published ports reached "elsewhere"
    failed = run_cell("ex02-port-mapping", "ex02-private", {"private_line": line})
    assert failed is not None and "reachable from this machine only" in failed, failed
    private = f"docker run -d -p 127.0.0.1:8888:8888 {NOTEBOOK}"
    assert run_cell("ex02-port-mapping", "ex02-private", {"private_line": private}) is None
