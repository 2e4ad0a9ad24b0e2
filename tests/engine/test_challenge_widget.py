"""The challenge widget on the real engine, driven by Button.click() as a learner's clicks would."""

from __future__ import annotations

from pathlib import Path

import pytest

from portbinding.challenge.ladder import RUNGS
from portbinding.engine import Engine
from portbinding.widgets import ChallengeWidget
from tests.support.challenge import TEST_LABELS, shell

pytestmark = pytest.mark.engines("docker", reason="a foreign container is made with the docker CLI")


def _click(widget: ChallengeWidget, button: object, what: str, timeout: float = 60) -> None:
    button.click()  # type: ignore[attr-defined]
    assert widget.wait_idle(timeout), f"{what} did not finish within {timeout} s"


def test_a_learner_solves_a_challenge_with_the_buttons(engine: Engine, tmp_path: Path) -> None:
    """Start, every rung, a refused early hint, commit, hints 1-3, Run hint 3's line: the verdict
    turns solved by itself, is announced, says so in words, and End removes what it started."""
    widget = ChallengeWidget(causes=["loopback_only"], image="scoring-api", engine=engine, folder=tmp_path)
    assert all(b.disabled for b in widget._rung_buttons.values()), "rungs are clickable before a challenge"
    _click(widget, widget._start, "Start")
    told = widget.challenge.told
    assert widget.message == f"Challenge {told['id']} started.", widget.message
    assert widget._start.disabled, "Start is still clickable while the challenge runs"
    assert widget._start.description.startswith("Challenge running"), widget._start.description
    assert "Not solved yet" in widget.verdict, widget.verdict
    assert ("Challenge: " + widget.verdict, False) in widget._message.heard, (
        f"the verdict was not given to screen readers: {widget._message.heard}"
    )

    for rung in RUNGS:
        _click(widget, widget._rung_buttons[rung.layer], rung.title)
        assert widget.rung_text.startswith("$ "), f"{rung.title} shows no command: {widget.rung_text[:200]}"
    assert widget.rung_text.startswith("$ curl"), f"the last rung (the host) is not curl: {widget.rung_text}"
    looked = [e.layer for e in widget.challenge.attempt.events if e.kind == "look"]
    assert looked == [r.layer for r in RUNGS], f"the rung clicks were not recorded: {looked}"

    _click(widget, widget._hint, "an early hint")
    assert "Commit to a failing layer" in widget.message, f"a hint before committing: {widget.message}"
    widget._layer.value, widget._cause.value = "listening", "loopback_only"
    _click(widget, widget._commit, "Commit")
    for number in (1, 2, 3):
        _click(widget, widget._hint, f"hint {number}")
    assert [h.number for h in widget.hints_given] == [1, 2, 3], f"hints out of order: {widget.hints_given}"
    assert "Hint 3 of 3" in widget._hint_view.value, f"hint 3 is not shown: {widget._hint_view.value}"
    said = widget._message.said
    assert said.startswith("Hint 3 of 3.") and widget.hints_given[-1].line in said, (
        f"hint 3 was not given to screen readers with its line: {said!r}"
    )
    assert widget._line.value == widget.hints_given[-1].line, "hint 3's line is not in the command box"

    _click(widget, widget._run, "Run")
    assert widget.wait_solved(30), f"the verdict never turned solved: {widget.verdict}"
    assert widget.verdict.startswith("✓ Solved"), widget.verdict
    assert "— right." in widget.verdict, f"the committed cause is judged on solving: {widget.verdict}"
    assert ("Challenge: " + widget.verdict, True) in widget._message.heard, (
        f"solving was not announced assertively: {widget._message.heard}"
    )

    _click(widget, widget._end, "End")
    assert widget.message.startswith("Ended (solved)"), widget.message
    assert not engine.course_containers(session=engine.session), "End left challenge containers"
    assert not widget._start.disabled and widget._hint.disabled, "after End: Start again, no more hints"
    assert widget._start.description == "Start the challenge", widget._start.description


def test_the_command_box_leaves_other_containers_alone(engine: Engine, tmp_path: Path) -> None:
    """The box runs docker commands only on this challenge's containers; others are refused with advice."""
    widget = ChallengeWidget(causes=["crashed"], engine=engine, folder=tmp_path)
    widget.start()
    other = shell(f"docker create {TEST_LABELS} portbinding/scoring-api:1.0")
    assert other.returncode == 0, other.stderr
    other_id = other.stdout.strip()
    try:
        widget._line.value = f"docker rm -f {other_id}"
        _click(widget, widget._run, "Run")
        assert "not one of this challenge's containers" in widget.message, widget.message
        assert shell(f"docker inspect {other_id}").returncode == 0, "the box removed a foreign container"
        widget._line.value = "docker run -v /:/host portbinding/notebook:1.0"
        _click(widget, widget._run, "Run")
        assert "-v" in widget.message, f"a refused option was not explained: {widget.message}"
        widget._line.value = "ls /"
        _click(widget, widget._run, "Run")
        assert "terminal" in widget.message, widget.message
    finally:
        shell(f"docker rm -f {other_id}")
        widget.end()
