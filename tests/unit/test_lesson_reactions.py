"""The lessons' reactions, without an engine: predictions, commitments, and commands for a rung."""

from __future__ import annotations

import pytest

from portbinding.diagnose import Diagnosis, Evidence, Fix
from portbinding.diagnose.ladder import Cause
from portbinding.errors import PortBindingError
from portbinding.lesson.ladder import FITS
from portbinding.lesson.predict import check_commitment, reveal
from portbinding.lesson.terminal import split_commands, without_progress_meter

CHOICES = ["answers", "refused", "reset", "timeout"]


def test_a_right_prediction_is_called_right() -> None:
    """Same choice as what was observed: a right verdict, in words."""
    reaction = reveal("reset", "reset", choices=CHOICES)
    assert reaction.right, f"reset == reset should be right: {reaction}"
    assert str(reaction).startswith("✔ Right"), f"the verdict is said in words: {reaction}"


def test_a_wrong_prediction_gets_the_lessons_words_for_that_guess() -> None:
    """A wrong guess: what happened, and the lesson's own reaction to that particular guess."""
    reaction = reveal(
        "answers", "reset", choices=CHOICES, why={"answers": "Up is not reachable."}, because="Always."
    )
    text = str(reaction)
    assert reaction.verdict == "wrong", f"answers != reset: {text}"
    assert "You predicted answers; what happened: reset." in text, text
    assert "Up is not reachable." in text and "Always." in text, f"why and because are both said: {text}"


@pytest.mark.parametrize("guess", [None, Ellipsis, "", "  "])
def test_no_prediction_is_not_counted_as_wrong(guess: object) -> None:
    """Left unanswered (Run All): the lesson says what happened and asks for a guess next time."""
    reaction = reveal(guess, "reset", choices=CHOICES)
    assert reaction.verdict == "none", f"{guess!r} is no prediction: {reaction}"
    assert "What happened: reset." in str(reaction), str(reaction)


def test_a_guess_outside_the_choices_is_named_and_counts_as_none() -> None:
    """A typo is not silently wrong: the lesson names it and lists the choices."""
    reaction = reveal("connection reset", "reset", choices=CHOICES)
    assert reaction.verdict == "none", str(reaction)
    assert "'connection reset' is not one of the choices" in str(reaction), str(reaction)


def test_choices_are_matched_whatever_the_case_and_quotes() -> None:
    """ "exited", 'Exited' and ' "Exited" ' are all the choice Exited."""
    for guess in ("exited", "Exited", ' "Exited" '):
        reaction = reveal(guess, "Exited", choices=["Up", "Exited"])
        assert reaction.right, f"{guess!r} should match Exited: {reaction}"


def test_the_reaction_is_html_with_a_live_region_and_the_verdict_in_words() -> None:
    """Screen readers announce it (role=status), and the verdict is text, not only a colour."""
    markup = reveal("reset", "refused", choices=CHOICES)._repr_html_()
    assert 'role="status"' in markup and "aria-live" in markup, markup
    assert "Not quite" in markup, markup


def _diagnosis(cause: Cause) -> Diagnosis:
    evidence = Evidence(
        container="c",
        image="i",
        status="running",
        exit_code=None,
        health=None,
        running_for_s=1.0,
        log_tail=[],
        container_port=8888,
    )
    return Diagnosis(cause, evidence, Fix("make it listen on 0.0.0.0"))


def test_a_commitment_is_checked_against_the_diagnosis_rung_and_cause() -> None:
    """Right rung and cause: right; the diagnosis is shown after the commitment either way."""
    reaction = check_commitment("listening", "loopback_only", _diagnosis("loopback_only"))
    assert reaction.right, str(reaction)
    assert "Cause: loopback_only" in str(reaction), f"the diagnosis follows: {reaction}"
    assert "make it listen on 0.0.0.0" not in str(reaction), f"the fix is the learner's next step: {reaction}"


def test_going_past_the_broken_rung_is_named() -> None:
    """Committing to a later rung than the first broken one: the lesson says to go back down."""
    reaction = check_commitment("host", "loopback_only", _diagnosis("wrong_container_port"))
    assert reaction.verdict == "wrong", str(reaction)
    assert "You went past the broken rung" in str(reaction), str(reaction)


def test_an_empty_commitment_is_none_not_wrong() -> None:
    reaction = check_commitment(None, None, _diagnosis("crashed"))
    assert reaction.verdict == "none", str(reaction)


@pytest.mark.parametrize(
    "layer, line, fits",
    [
        ("state", "docker ps -a --filter name=x", True),
        ("state", "podman logs x", True),
        ("published", "docker port x", True),
        ("published", "docker logs x", False),
        ("listening", "docker exec x cat /proc/net/tcp", True),
        ("listening", "docker exec x ss -ltn", True),
        ("listening", "docker port x", False),
        ("inside", "docker exec x python3 -c 'print(1)'", True),
        ("inside", "docker exec x cat /proc/net/tcp", False),
        ("host", "curl -v http://127.0.0.1:8888/api", True),
        ("host", "docker exec x curl http://127.0.0.1:8888", False),
    ],
)
def test_a_command_fits_a_rung_only_when_it_answers_that_rungs_question(
    layer: str, line: str, fits: bool
) -> None:
    """docker logs does not say what is published; a request from inside is not one from the host."""
    words = split_commands(line)[0]
    assert FITS[layer](words) is fits, f"{line!r} for rung {layer}: expected fits={fits}"  # type: ignore[index]


def test_commands_split_like_a_shell_with_operators_only_outside_quotes() -> None:
    """`;` inside a quoted python -c is part of the command; && separates commands."""
    commands = split_commands('docker exec x python3 -c "import a; print(1)" && curl -v http://a/b')
    assert commands == [
        ["docker", "exec", "x", "python3", "-c", "import a; print(1)"],
        ["curl", "-v", "http://a/b"],
    ], commands


@pytest.mark.parametrize(
    "line", ["docker ps | grep x", "curl a > out", "docker ps; docker port x", "echo 'open"]
)
def test_shell_only_lines_are_refused_with_a_next_step(line: str) -> None:
    """Pipes, redirections, ; and unclosed quotes are for a real terminal: a clear error, not a mystery."""
    with pytest.raises(PortBindingError) as caught:
        split_commands(line)
    assert caught.value.hint, f"{line!r}: the error should say what to do instead"


def test_curls_progress_meter_is_left_out_as_a_terminal_never_shows_it() -> None:
    """Real curl -v output captured from a pipe: the meter lines go, the trace and the error stay."""
    captured = (
        "  % Total    % Received % Xferd  Average Speed   Time    Time     Time  Current\n"
        "                                 Dload  Upload   Total   Spent    Left  Speed\n"
        "\n"
        "  0     0    0     0    0     0      0      0 --:--:-- --:--:-- --:--:--     0"
        "*   Trying 127.0.0.1:8888...\n"
        "* Connected to 127.0.0.1 (127.0.0.1) port 8888 (#0)\n"
        "{ [21 bytes data]\n"
        "100    21  100    21    0     0   4200      0 --:--:-- --:--:-- --:--:--  5250\n"
        "curl: (56) Recv failure: Connection reset by peer"
    )
    shown = without_progress_meter(captured)
    assert "% Total" not in shown and "Dload" not in shown and "bytes data" not in shown, shown
    assert shown.splitlines()[0] == "*   Trying 127.0.0.1:8888...", shown
    assert shown.endswith("curl: (56) Recv failure: Connection reset by peer"), shown
