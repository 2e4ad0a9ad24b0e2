"""Engine faults in words, without an engine: a stopped engine, a taken port, a missing image."""

from __future__ import annotations

import pytest
import requests.exceptions
import urllib3.exceptions

from portbinding.cli import EXIT_NO_ENGINE, _exit_code
from portbinding.command import parse_run
from portbinding.engine_errors import engine_stopped, moved_to_free_port
from portbinding.errors import EngineStopped, EngineUnavailable, PortBindingError, PortInUse
from portbinding.widgets._base import FixOffer, course_image
from portbinding.widgets._ui import RECONNECT_HINT, MessageArea, error_text
from portbinding.widgets._worker import Worker


def _aborted(cause: OSError) -> requests.exceptions.ConnectionError:
    """What docker-py raises when the engine's socket fails under a request."""
    return requests.exceptions.ConnectionError(urllib3.exceptions.ProtocolError("Connection aborted.", cause))


@pytest.mark.parametrize(
    ("low_level", "words"),
    [
        (_aborted(FileNotFoundError(2, "No such file or directory")), "its socket is gone"),
        (_aborted(ConnectionRefusedError(111, "Connection refused")), "nothing listens on its socket"),
        (requests.exceptions.ReadTimeout("Read timed out. (read timeout=5)"), "did not reply in time"),
        (_aborted(ConnectionResetError(104, "Connection reset by peer")), "stopped or restarted"),
    ],
)
def test_a_stopped_engine_is_described_in_plain_words(low_level: Exception, words: str) -> None:
    """The low-level error becomes what happened and the next step, with no exception text in it."""
    error = engine_stopped(low_level)
    assert isinstance(error, EngineStopped) and isinstance(error, EngineUnavailable)
    assert error.message.startswith("The container engine stopped answering") and words in error.message
    assert "Errno" not in str(error) and "ProtocolError" not in str(error), str(error)
    assert "portbinding doctor --install" in error.hint and "run the command again" in error.hint
    assert _exit_code(error) == EXIT_NO_ENGINE, "the CLI exits 3 for it"


def test_widgets_say_they_reconnect_by_themselves() -> None:
    """In a widget, a stopped engine's next step is the widget's own: start it, click again."""
    message, hint = error_text(engine_stopped(_aborted(FileNotFoundError(2, "gone"))))
    assert "stopped answering" in message and hint == RECONNECT_HINT
    assert "reconnects by itself" in hint and "no kernel restart" in hint
    other = PortBindingError("Something else.", hint="its own hint")
    assert error_text(other) == ("Something else.", "its own hint"), "other errors keep their hint"


def test_a_job_that_meets_a_stopped_engine_leaves_the_widget_idle() -> None:
    """The worker shows the message and re-enables the buttons: never stuck in busy."""
    message = MessageArea()
    worker = Worker(message)
    offer = FixOffer(worker)  # its button is one of the worker's buttons

    def job() -> None:
        raise engine_stopped(_aborted(FileNotFoundError(2, "gone")))

    assert worker.submit(job, label="Starting")
    assert worker.wait_idle(10) and not worker.busy
    assert "stopped answering" in message.text and "reconnects by itself" in message.text
    assert not offer._button.disabled, "the buttons are enabled again"


def test_moving_a_run_to_the_free_port_moves_only_the_taken_mapping() -> None:
    """-p 8888 taken, -p 9000 not: only 8888 moves, to the suggestion; address and protocol stay."""
    spec = parse_run("docker run -d -p 127.0.0.1:8888:8888 -p 9000:9000 portbinding/notebook:1.0")
    moved = moved_to_free_port(spec, PortInUse("taken", port=8888, suggestion=40123))
    assert moved.to_cli() == "docker run -d -p 127.0.0.1:40123:8888 -p 9000:9000 portbinding/notebook:1.0"
    unnamed = moved_to_free_port(spec, PortInUse("taken", port=0, suggestion=40123))
    assert "-p 127.0.0.1:40123:8888 -p 40123:9000" in unnamed.to_cli(), "unnamed port: every fixed one moves"
    with pytest.raises(ValueError, match="suggests no free port"):
        moved_to_free_port(spec, PortInUse("taken", port=8888, suggestion=None))


def test_only_course_images_are_offered_a_build() -> None:
    """A course tag (or its repository alone, meaning :latest) has a definition to build; others none."""
    found = course_image("portbinding/notebook:1.0")
    assert found is not None and found.name == "notebook"
    latest = course_image("portbinding/scoring-api")
    assert latest is not None and latest.name == "scoring-api"
    assert course_image("portbinding/notebook:9.9") is None and course_image("nginx:latest") is None


def test_a_fix_offer_runs_its_action_once_then_hides() -> None:
    """offer() shows the button; accepting runs the action on the worker and hides it; nothing left after."""
    worker = Worker(MessageArea())
    offer = FixOffer(worker)
    assert offer.description == "" and offer._button.layout.display == "none"
    calls: list[str] = []
    offer.offer("Use port 40123 instead", lambda: calls.append("ran"), label="Starting", tooltip="tip")
    assert offer.description == "Use port 40123 instead" and offer._button.layout.display is None
    offer.accept()
    assert calls == ["ran"] and offer.description == ""
    with pytest.raises(PortBindingError, match="nothing to repair"):
        offer.accept()
