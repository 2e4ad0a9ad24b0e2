"""The command line without an engine: bad input gets exit 2 and a message, never a traceback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from portbinding.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_PROBLEM, main


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["diagnose", "anything", "--port", "0"], "1 to 65535"),
        (["diagnose", "anything", "--port", "70000"], "1 to 65535"),
        (["run", "--", "docker", "run", "-p", "70000:80", "portbinding/notebook:1.0"], "70000"),
        (["run", "--", "docker", "run", "-p", "localhost:80:80", "portbinding/notebook:1.0"], "localhost"),
        (["run", "--", "docker", "run", "-v", "/:/host", "portbinding/notebook:1.0"], "-v"),
        (["run", "--", "docker", "run", "ubuntu"], "ubuntu"),
        (["run", "no-such-scenario"], "no scenario called"),
        (["run"], "Say what to run"),
        (["run", "--", ""], "Say what to run"),
        (["probe", "not a url"], "not a URL"),
        (["images", "build", "no-such-image"], "no exercise image called"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each piece of nonsense is refused before any engine work, with a readable reason."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT, (code, err)
    assert needle in err, err
    assert "Traceback" not in err, err


def test_probe_of_a_closed_port_exits_1_with_stable_json_keys(capsys: pytest.CaptureFixture[str]) -> None:
    """probe --json prints outcome/detail/elapsed_ms and exits 1 when unreachable."""
    code = main(["probe", f"http://127.0.0.1:{_closed_port()}/api", "--json", "--timeout", "1"])
    payload = json.loads(capsys.readouterr().out)
    assert code == EXIT_PROBLEM, payload
    assert payload["outcome"] == "refused", payload
    assert {"outcome", "detail", "elapsed_ms"} <= set(payload), payload


def test_json_errors_are_json_too(capsys: pytest.CaptureFixture[str]) -> None:
    """With --json, even a refusal is one JSON object with error, message and hint."""
    code = main(["diagnose", "anything", "--port", "0", "--json"])
    payload = json.loads(capsys.readouterr().out)
    assert code == EXIT_BAD_INPUT
    assert payload["error"] == "PortSpecError" and payload["hint"], payload


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`portbinding --version` answers with the installed version and exits 0."""
    from portbinding import __version__

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    out = capsys.readouterr().out
    assert done.value.code == 0, f"--version exited {done.value.code}"
    assert __version__ in out and "portbinding" in out, f"--version printed {out!r}"


def test_run_help_lists_every_scenario_with_its_title(capsys: pytest.CaptureFixture[str]) -> None:
    """`run --help` names each scenario a learner can run, so nobody has to guess an id."""
    from portbinding.scenarios import SCENARIOS

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    missing = [s.id for s in SCENARIOS if s.id not in out]
    assert not missing, f"run --help does not list {missing}:\n{out}"
    assert SCENARIOS[1].title in out, f"run --help lists ids without saying what they are:\n{out}"


def test_laying_out_a_course_where_one_is_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`course init` into a folder that already holds the course is about the folder asked for."""
    assert main(["course", "init", str(tmp_path / "course")]) == 0, capsys.readouterr().err
    code = main(["course", "init", str(tmp_path / "course")])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT, (code, err)
    assert "Next step" in err and "Traceback" not in err, err


def test_a_reader_that_goes_away_ends_the_command_quietly() -> None:
    """`portbinding probe ... | head -0`: no BrokenPipeError traceback, a clean exit."""
    command = [sys.executable, "-m", "portbinding", "probe", f"http://127.0.0.1:{_closed_port()}/", "--json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # before the command has anything to print: its write meets a closed pipe
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) in (EXIT_OK, EXIT_PROBLEM), err
    assert "Traceback" not in err and "BrokenPipe" not in err, err
