"""``host.run_as_typed``: a command as a learner's terminal runs it, for terminal() and compose lines.

Real processes (``sh``), no engine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from portbinding.host import run_as_typed


def test_both_streams_come_back_interleaved_with_the_exit_code() -> None:
    output, code = run_as_typed(["sh", "-c", "echo out; echo err >&2; exit 3"], 10)
    assert (output.splitlines(), code) == (["out", "err"], 3)


def test_a_command_past_its_timeout_is_stopped_with_what_it_printed() -> None:
    output, code = run_as_typed(["sh", "-c", "echo started; exec sleep 30"], 0.5)
    assert code == 124, output
    assert output.startswith("started") and "no end within 0.5 s: stopped" in output


def test_a_program_that_is_not_installed_says_so() -> None:
    output, code = run_as_typed(["no-such-program-here"], 10)
    assert code == 127 and output.startswith("(no-such-program-here could not run:"), output


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
    output, code = run_as_typed(
        ["sh", "-c", script],
        10,
        docker_host="unix:///run/x.sock",
        cwd=tmp_path,
        env={"COMPOSE_PROGRESS": "plain"},
    )
    assert code == 0
    assert output.split() == [
        "proxy=unset",
        "host=unix:///run/x.sock",
        "context=unset",
        "plain",
        str(tmp_path),
    ]
