"""The widgets without an engine: cards, reorder, policy refusals, the worker, the views' text."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from portbinding.diagnose import classify
from portbinding.dockerjson import ContainerInspect, ContainerState
from portbinding.errors import EngineUnavailable, PortBindingError
from portbinding.widgets import (
    ContainerConsole,
    DrillSettings,
    FlashCards,
    InterviewCards,
    InterviewQuestion,
    PortMapDiagram,
    ReorderExercise,
    _live,
    console,
    session,
)
from portbinding.widgets._ui import MessageArea, button
from portbinding.widgets._worker import Worker
from portbinding.widgets.portmap import PortMap
from tests.support.evidence import evidence

CARDS = [
    ("What does -p 8888:8888 do?", "Publishes host port 8888 to container port 8888."),
    ("What is 127.0.0.1 inside a container?", "The container's own loopback."),
    ("Does EXPOSE publish a port?", "No: it only documents it."),
]

QUESTIONS = [
    InterviewQuestion("beginner", "What does -p do?", "It publishes a container port on the host."),
    InterviewQuestion(
        "intermediate", "Why is the notebook reset?", "It listens on the container's loopback."
    ),
    InterviewQuestion(
        "expert", "Why does curl say 56 and not 7?", "docker-proxy accepts, then finds nobody."
    ),
    InterviewQuestion("beginner", "Where do published ports open?", "On the engine's host."),
]


@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if a widget tries to reach an engine."""

    def refuse(owner: str = "lesson") -> None:
        raise AssertionError("the widget connected to an engine, but it should not need one here")

    monkeypatch.setattr(console, "lesson_engine", refuse)


# ---------------------------------------------------------------------------------- flash cards


def test_flash_cards_flip_and_move_with_the_buttons() -> None:
    """Flip shows the back; Next shows the next card front up; the ends disable their buttons."""
    deck = FlashCards(CARDS)
    assert deck.progress == "1 / 3" and deck.showing == CARDS[0][0], "a deck starts on card 1, front up"
    assert deck._previous.disabled, "Previous is disabled on the first card"
    deck._flip.click()
    assert deck.flipped and deck.showing == CARDS[0][1], "Flip shows the back"
    assert CARDS[0][1].split(":")[0] in deck._card.value, "the back's text is on the card"
    deck._next.click()
    assert (deck.progress, deck.flipped) == ("2 / 3", False), "Next moves on, front up"
    deck._next.click()
    assert deck._next.disabled and deck.progress == "3 / 3", "Next is disabled on the last card"
    deck._next.click()
    assert deck.progress == "3 / 3", "Next on the last card stays there"
    deck._previous.click()
    assert deck.showing == CARDS[1][0], "Previous goes back one card"


def test_an_empty_deck_is_a_clear_error() -> None:
    """A deck with no cards says what to pass."""
    with pytest.raises(PortBindingError, match="at least one card"):
        FlashCards([])


# ---------------------------------------------------------------------------------- interview cards


def test_interview_cards_filter_by_level_and_reveal_the_senior_answer() -> None:
    """The level filter limits the questions; Show senior answer reveals it; moving hides it again."""
    cards = InterviewCards(QUESTIONS)
    assert len(cards.visible_questions) == 4 and cards.progress == "1 / 4", "all levels by default"
    assert cards._answer.value == "" and not cards.answer_shown, "the answer starts hidden"
    cards._reveal.click()
    assert cards.answer_shown, "Show senior answer reveals it"
    assert QUESTIONS[0].senior_answer.split()[0] in cards._answer.value, "the senior answer is shown"
    cards.level = "beginner"
    assert [q.question for q in cards.visible_questions] == [QUESTIONS[0].question, QUESTIONS[3].question]
    assert not cards.answer_shown and cards.progress == "1 / 2", (
        "changing the level starts again, answer hidden"
    )
    cards._next.click()
    assert cards.current == QUESTIONS[3], "Next moves within the level"
    cards.level = "expert"
    assert cards.current == QUESTIONS[2] and cards._next.disabled, "one expert question: Next is disabled"


def test_a_level_without_questions_says_so() -> None:
    """Filtering to a level with no questions shows a note instead of failing."""
    cards = InterviewCards(QUESTIONS[:1])
    cards.level = "expert"
    assert cards.current is None and cards.progress == "0 / 0", "no expert questions"
    assert "No questions at this level" in cards._question.value
    assert cards._reveal.disabled, "nothing to reveal"


def test_an_unknown_level_is_a_clear_error() -> None:
    """InterviewQuestion names the levels it accepts."""
    with pytest.raises(PortBindingError, match="beginner, intermediate, expert"):
        InterviewQuestion("guru", "q", "a")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- reorder


STEPS = [
    "Run the container",
    "Probe it from the host",
    "Probe it from inside",
    "Read what listens",
    "Fix the bind",
]


def test_reorder_starts_shuffled_the_same_way_every_time() -> None:
    """The seeded shuffle is reproducible and never already solved."""
    first, second = ReorderExercise(STEPS), ReorderExercise(STEPS)
    assert first.order == second.order, "the same seed gives the same order"
    assert first.order != STEPS and sorted(first.order) == sorted(STEPS), "shuffled, same steps"
    assert not ReorderExercise(["a", "b"], shuffle_seed=0).solved, "even two steps never start solved"


def test_reorder_moves_with_the_buttons_and_check_scores() -> None:
    """▲/▼ move a step; Check colours rows and counts the steps in place; solving gives full marks."""
    exercise = ReorderExercise(STEPS)
    before = exercise.order
    down_buttons = [row.children[1] for row in exercise.children[: len(STEPS)]]
    down_buttons[0].click()
    assert exercise.order[:2] == [before[1], before[0]], "▼ on row 1 swaps it with row 2"
    score = exercise.check()
    expected = sum(mine == right for mine, right in zip(exercise.order, STEPS, strict=True))
    assert score == expected and exercise.score == f"{expected} / {len(STEPS)} in place"
    states = [
        sum(f"pbl-reorder-{state}" in label.value for state in ("right", "wrong", "unchecked"))
        for label in exercise._labels
    ]
    assert states == [1] * len(STEPS), "after Check each row is either right or wrong"
    # Solve it: bring each right step up to its place.
    for position, step in enumerate(STEPS):
        exercise.move(exercise.order.index(step), position - exercise.order.index(step))
    assert exercise.solved and exercise.check() == len(STEPS), "in order: every step counts"
    assert "all in order" in exercise._score.value
    assert all("pbl-reorder-right" in label.value for label in exercise._labels), "every row is green"


def test_reorder_rejects_a_position_that_does_not_exist() -> None:
    """move() with a bad index is a course error naming the valid range."""
    with pytest.raises(PortBindingError, match="positions run from 0 to 4"):
        ReorderExercise(STEPS).move(9, -1)


# ---------------------------------------------------------------------------------- console policy


def test_console_refuses_a_forbidden_run_line_without_an_engine(no_engine: None) -> None:
    """--privileged is refused by the policy with a friendly message; no engine, no traceback."""
    widget = ContainerConsole()
    widget.line = "docker run --privileged portbinding/notebook"
    widget._run.click()
    assert not widget.worker.busy, "a policy refusal starts no job"
    text = widget.message
    assert "--privileged is not allowed" in text, f"the message names the option: {text!r}"
    assert "Next step:" in text and "Traceback" not in text, f"message + next step, no traceback: {text!r}"
    assert "pbl-msg-error" in widget._message.value, "shown as an error message"
    assert widget.container is None


def test_console_run_line_raises_the_policy_error_and_shows_it(no_engine: None) -> None:
    """The synchronous form raises the same course error the button shows."""
    widget = ContainerConsole()
    with pytest.raises(PortBindingError, match="not one of the course images"):
        widget.run_line("docker run -d -p 8888:8888 nginx")
    assert "not one of the course images" in widget.message


def test_console_fills_the_run_line_from_a_scenario(no_engine: None) -> None:
    """Choosing a scenario puts its run line (on a free host port) in the text box and the CLI preview."""
    widget = ContainerConsole(initial="loopback_only")
    assert widget.line.startswith("docker run -d -p ") and "portbinding/notebook-loopback:1.0" in widget.line
    assert ":8888 " in widget.line, "the container side stays 8888"
    assert "docker run" in widget._cli.value, "the CLI equivalent is shown"
    assert widget._stop.disabled and widget._remove.disabled, "nothing to stop before a run"


def test_console_rejects_an_unknown_initial_scenario() -> None:
    """An unknown scenario id names the known ones."""
    with pytest.raises(PortBindingError, match="loopback_only"):
        ContainerConsole(initial="nope")


# ---------------------------------------------------------------------------------- worker


def test_worker_disables_buttons_while_busy_and_refuses_a_second_job() -> None:
    """While a job runs its buttons are disabled; a second submit is refused with a note."""
    message, run = MessageArea(), button("Run", css_class="pbl-test")
    worker = Worker(message, buttons=[run])
    release = threading.Event()
    assert worker.submit(lambda: release.wait(10), label="Holding")
    assert run.disabled and worker.busy and "Holding" in message.text, "busy: disabled, says what it does"
    assert not worker.submit(lambda: None, label="Second"), "one job at a time"
    assert "Still busy: Holding" in message.text
    release.set()
    assert worker.wait_idle(10), "the job finishes"
    assert not run.disabled and message.kind == "", "enabled again, the busy note cleared"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            EngineUnavailable("No container engine answers.", hint="start Docker"),
            "No container engine answers.",
        ),
        (KeyError("boom"), "Something unexpected went wrong (KeyError"),
    ],
)
def test_worker_turns_exceptions_into_messages(error: Exception, expected: str) -> None:
    """Course errors show message + next step; anything else a short generic message; never a traceback."""
    message = MessageArea()
    worker = Worker(message)

    def fail() -> None:
        raise error

    worker.submit(fail, label="Failing")
    assert worker.wait_idle(10)
    assert message.kind == "error" and expected in message.text, message.text
    assert "Next step:" in message.text and "Traceback" not in message.text and 'File "' not in message.text
    assert worker.last_error is error


def test_worker_call_shows_and_reraises() -> None:
    """The synchronous form shows the message and raises the error to the caller."""
    message = MessageArea()
    worker = Worker(message)

    def fail() -> None:
        raise EngineUnavailable("The engine stopped answering.", hint="run `portbinding doctor`")

    with pytest.raises(EngineUnavailable):
        worker.call(fail, label="Failing")
    assert "The engine stopped answering." in message.text and not worker.busy


# ---------------------------------------------------------------------------------- views' text


def test_ports_column_reads_like_docker_ps() -> None:
    """Published bindings as ip:host->port/proto; exposed but unpublished ports bare."""
    attrs: ContainerInspect = {
        "NetworkSettings": {
            "Ports": {
                "8888/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8888"}, {"HostIp": "::", "HostPort": "8888"}],
                "9000/tcp": None,
            }
        }
    }
    assert _live.ports_column(attrs) == "0.0.0.0:8888->8888/tcp, [::]:8888->8888/tcp, 9000/tcp"
    assert _live.ports_column({"NetworkSettings": {"Ports": {}}}) == ""


def test_status_text_reads_like_docker_ps() -> None:
    """Up N seconds (with health), Exited (code) N ago, Created."""
    now = datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC)
    running: ContainerState = {
        "Status": "running",
        "StartedAt": "2026-01-01T12:00:05.123456789Z",
        "Health": {"Status": "starting"},
    }
    assert _live.status_text(running, now=now) == "Up 4 seconds (health: starting)"
    exited: ContainerState = {"Status": "exited", "ExitCode": 1, "FinishedAt": "2026-01-01T11:58:10Z"}
    assert _live.status_text(exited, now=now) == "Exited (1) 2 minutes ago"
    assert _live.status_text({"Status": "created"}, now=now) == "Created"


def _port_map(listeners: tuple[str, ...], *, running: bool = True) -> PortMap:
    """The diagram's facts for a container published 8888 -> 8888, from its classified evidence."""
    found = classify(evidence(listening=listeners, status="running" if running else "exited", host="reset"))
    return PortMap(found, "172.17.0.2")


def test_port_map_marks_a_loopback_listener_as_the_broken_hop() -> None:
    """Published + listening on 127.0.0.1: the address hop is red, the others green."""
    published, port, address = _port_map(("127.0.0.1:8888",)).hops()
    assert (published.ok, port.ok, address.ok) == (True, True, False)
    assert (
        address.colour_word == "red" and "127.0.0.1:8888" in address.detail and "172.17.0.2" in address.detail
    )


def test_port_map_of_a_wrong_container_port_and_of_a_stopped_container() -> None:
    """Nothing on the port: the port hop is red; not running: the first hop red, the rest not reached."""
    _, port, address = _port_map(("0.0.0.0:9999",)).hops()
    assert port.ok is False and "0.0.0.0:9999" in port.detail and address.ok is None
    first, *rest = _port_map((), running=False).hops()
    assert first.ok is False and all(hop.ok is None for hop in rest)


def test_drill_settings_make_the_run_line_and_the_reasons() -> None:
    """The settings pick the image by bind address and explain every broken hop."""
    settings = DrillSettings(18888, 9999, "127.0.0.1", "127.0.0.1")
    assert (
        settings.spec().to_cli() == "docker run -d -p 127.0.0.1:18888:9999 portbinding/notebook-loopback:1.0"
    )
    reasons = " ".join(settings.reasons())
    assert (
        "container port 9999" in reasons and "own loopback" in reasons and "other machines cannot" in reasons
    )
    assert "every hop holds" in DrillSettings(8888, 8888, "0.0.0.0", "0.0.0.0").reasons()[0]


def test_end_lesson_without_an_engine_says_there_is_nothing_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    """end_lesson() before any engine use prints one line and removes nothing."""
    if session.current_engine() is not None:
        pytest.skip("an engine session is already open in this process")
    assert session.end_lesson() == []
    assert "Nothing to clean up" in capsys.readouterr().out


def test_doctor_build_progress_has_one_bar_per_image() -> None:
    """BuildEvents feed one IntProgress per image; a finished build turns its bar green."""
    from portbinding.builder import BuildEvent
    from portbinding.widgets import DoctorPanel

    doctor = DoctorPanel()
    doctor._on_build_event(BuildEvent("portbinding/notebook:1.0", 3, 10, "Step 3/10 : COPY requirements.txt"))
    doctor._on_build_event(
        BuildEvent("portbinding/slow-start:1.0", 1, 1, "up to date", done=True, cached=True)
    )
    bars = list(doctor._progress.children)
    assert len(bars) == 2, "one bar per image"
    assert (bars[0].value, bars[0].max) == (3, 10) and "Step 3/10" in bars[0].description
    assert bars[1].bar_style == "success" and bars[1].description.endswith("up to date")
    doctor._on_build_event(BuildEvent("portbinding/notebook:1.0", 10, 10, "built", done=True))
    assert len(doctor._progress.children) == 2 and bars[0].value == 10 and bars[0].bar_style == "success"


def test_worker_runs_the_latest_quiet_job_refused_while_busy() -> None:
    """A redraw asked for while busy is not lost: the latest one runs after the current job."""
    worker = Worker(MessageArea())
    release, ran = threading.Event(), []
    assert worker.submit(lambda: release.wait(10), label="Holding")
    assert not worker.submit(lambda: ran.append("older"), label="Redraw", quiet=True)
    assert not worker.submit(lambda: ran.append("latest"), label="Redraw", quiet=True)
    release.set()
    assert worker.wait_idle(10)
    assert ran == ["latest"], "only the latest redraw runs, and wait_idle waits for it"


# ---------------------------------------------------------------------------------- lesson 06's review


def test_cards_render_backticks_as_inline_code() -> None:
    """`-p 8080:8888` on a card is shown as code, never as raw backticks (escaped all the same)."""
    cards = FlashCards([("In `-p 8080:8888`, which is the host port?", "8080: `docker port` shows <it>.")])
    front = cards._card.value
    assert "<code" in front and "-p 8080:8888</code>" in front and "`" not in front, front
    cards.flip()
    back = cards._card.value
    assert "docker port</code>" in back and "&lt;it&gt;" in back and "`" not in back, back
    interview = InterviewCards([InterviewQuestion("beginner", "Why `EXPOSE`?", "`-p` publishes.")])
    interview.reveal()
    shown = interview._question.value + interview._answer.value
    assert "EXPOSE</code>" in shown and "-p</code>" in shown and "`" not in shown, shown


def test_reorder_check_says_in_words_which_rows_are_in_place() -> None:
    """Colour is never the only signal: after Check each row says whether it is in place."""
    exercise = ReorderExercise(STEPS)
    exercise.check()
    words = [label.value for label in exercise._labels]
    right = [mine == truth for mine, truth in zip(exercise.order, STEPS, strict=True)]
    for shown, ok in zip(words, right, strict=True):
        expected = "in place" if ok else "not in place"
        colour = "green" if ok else "red"
        assert expected in shown, f"a row coloured {colour} should say {expected!r}: {shown}"


def test_reorder_shows_the_right_order_without_touching_the_learners() -> None:
    """Stuck? "Show the right order" lists the solution below; the learner's rows stay as they were."""
    exercise = ReorderExercise(STEPS)
    before = exercise.order
    exercise._show_solution.click()
    assert exercise.order == before, "showing the solution must not move the learner's steps"
    shown = exercise._solution_view.value
    positions = [shown.index(step) for step in STEPS]
    assert positions == sorted(positions), f"the solution is not listed in order: {shown}"


def test_the_review_deck_lives_in_the_package_so_the_lesson_shows_no_answers() -> None:
    """Lesson 06 builds its cards from the package: the answers never sit in a code cell above the widget."""
    from portbinding.widgets import review

    cards = FlashCards(review.FLASH_CARDS)
    assert cards.showing == review.FLASH_CARDS[0][0], "a fresh deck shows the first question"
    assert InterviewCards(review.INTERVIEW_QUESTIONS).current is not None
    levels = {question.level for question in review.INTERVIEW_QUESTIONS}
    assert levels == {"beginner", "intermediate", "expert"}, f"every level has questions: {levels}"
    assert len(review.REQUEST_JOURNEY) >= 4 and not ReorderExercise(review.REQUEST_JOURNEY).solved


# ---------------------------------------------------------------------------------- screen readers


def test_messages_are_read_aloud_once_errors_at_once() -> None:
    """A message box is shown and handed to the live regions; an error interrupts, the rest wait."""
    message = MessageArea()
    message.info("Started it.")
    message.error(PortBindingError("It failed.", hint="try again"))
    message.clear()
    expected = [("Started it.", False), ("It failed.\nNext step: try again", True)]
    assert message.heard == expected, message.heard
    assert "role=" not in message.value, "the box itself is no live region too: it would be read twice"
    regions = [child for child in message.children if type(child).__name__ == "Announcer"]
    assert regions, "no live region in the page"


def test_an_empty_port_map_tells_a_learner_their_next_step_not_an_api(no_engine: None) -> None:
    """Before anything runs, a port map that follows a console points at the console's Run."""
    diagram = PortMapDiagram()
    assert "diagram.show(container, 8888)" in diagram._svg.value, diagram._svg.value
    diagram.follow(ContainerConsole())
    shown = diagram._svg.value
    assert "run a container in the console" in shown and "show(" not in shown, (
        f"a followed port map still asks for a call the learner has not met: {shown}"
    )


def test_port_map_draws_the_mapping_with_the_address_it_was_published_on(no_engine: None) -> None:
    """-p 127.0.0.1:49000:8888 is drawn as such (the lessons teach the address), and the summary
    ends its sentence once."""
    facts = _port_map(("127.0.0.1:8888",))
    diagram = PortMapDiagram()
    drawn = diagram._draw(facts, facts.hops())
    assert "-p 127.0.0.1:49000:8888" in drawn, f"the drawing hides the publish address: {drawn}"
    assert 'lengthAdjust="spacingAndGlyphs">-p 127.0.0.1:49000:8888' in drawn, "long: not squeezed"
    diagram._map, diagram._hops = facts, facts.hops()
    assert ".." not in diagram.summary, f"the summary ends with two full stops: {diagram.summary}"
