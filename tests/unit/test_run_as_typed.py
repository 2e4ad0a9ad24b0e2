"""``host.run_as_typed``: a command as a learner's terminal runs it, for terminal() and compose lines.

Real processes (``sh``), no engine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from portbinding.host import run_as_typed


def test_both_streams_come_back_interleaved_with_the_exit_code() -> None:
    typed = run_as_typed(["sh", "-c", "echo out; echo err >&2; exit 3"], 10)
    assert (typed.output.splitlines(), typed.code, typed.note) == (["out", "err"], 3, ""), typed


def test_a_command_past_its_timeout_is_stopped_with_what_it_printed() -> None:
    typed = run_as_typed(["sh", "-c", "echo started; exec sleep 30"], 0.5)
    assert typed.code == 124, typed
    assert typed.output.strip() == "started" and typed.note == "(no end within 0.5 s: stopped)", typed
    assert typed.text == "started\n(no end within 0.5 s: stopped)", typed.text


def test_a_program_that_is_not_installed_says_so() -> None:
    typed = run_as_typed(["no-such-program-here"], 10)
    assert typed.code == 127 and typed.text.startswith("(no-such-program-here could not run:"), typed


def test_proxies_are_dropped_and_the_engine_and_folder_are_the_courses(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """curl to localhost must not go to a proxy; the docker CLI must reach the course's engine."""
    monkeypatch.setenv("http_proxy", "http://proxy.example:3128")
    monkeypatch.setenv("DOCKER_CONTEXT", "desktop-linux")
    script = (
        'echo "proxy=${http_proxy-unset} host=$DOCKER_HOST context=${DOCKER_CONTEXT-unset}" '
        '"$COMPOSE_PROGRESS" "$PWD"'
    )
    typed = run_as_typed(
        ["sh", "-c", script],
        10,
        docker_host="unix:///run/x.sock",
        cwd=tmp_path,
        env={"COMPOSE_PROGRESS": "plain"},
    )
    assert typed.code == 0, typed
    assert typed.output.split() == [
        "proxy=unset",
        "host=unix:///run/x.sock",
        "context=unset",
        "plain",
        str(tmp_path),
    ]


def test_the_terminal_keeps_the_stop_note_under_a_long_output_it_shortens() -> None:
    """A cell shows at most MAX_LINES lines; the note that the command was stopped still shows."""
    from portbinding.lesson.terminal import MAX_LINES, _cli

    shown = _cli("seq", ["sh", "-c", f"seq {MAX_LINES * 2}; exec sleep 30"], 0.5)
    lines = shown.output.splitlines()
    assert shown.exit_code == 124, shown
    assert lines[-2:] == [f"... ({MAX_LINES} more lines)", "(no end within 0.5 s: stopped)"], lines[-3:]
