"""The `portbinding` command line on the real engine: JSON keys, exit codes, friendly errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
from docker.models.containers import Container

from portbinding.engine import SESSION_LABEL, Engine

CLI = [sys.executable, "-m", "portbinding"]


@pytest.fixture(autouse=True)
def cli_session(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A private CLI session per test, so no other run's containers are ever counted or removed."""
    session = f"test-cli-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("PORTBINDING_SESSION", session)
    yield session
    _cli("cleanup", "--session", session)


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, check=False, env=dict(os.environ)
    )


def _mine(engine: Engine, session: str) -> list[Container]:
    return list(engine.client.containers.list(all=True, filters={"label": f"{SESSION_LABEL}={session}"}))


def test_doctor_reports_the_engine_kind_version_and_where_ports_are_reached(engine: Engine) -> None:
    """doctor --json names the engine and every image's status; exit 0."""
    result = _cli("doctor", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["engine"]["kind"] == engine.info.kind, payload
    assert payload["engine"]["version"] == engine.info.version, payload
    assert payload["engine"]["publish_host"], payload
    assert payload["missing"] == [], f"images missing after the build: {payload['missing']}"


def test_run_a_scenario_then_diagnose_it_then_clean_up(engine: Engine, cli_session: str) -> None:
    """run loopback_only -> exit 1 (unreachable); diagnose -> loopback_only; cleanup removes it."""
    started = _cli("run", "loopback_only", "--json", "--wait", "3")
    assert started.returncode == 1, (started.returncode, started.stdout, started.stderr)
    payload = json.loads(started.stdout)
    assert payload["probe"]["outcome"] in ("reset", "empty_reply", "refused"), payload
    name = payload["container"]
    # Jupyter needs a moment to listen at all; until then the honest answer is still_starting.
    deadline = time.monotonic() + 30
    report: dict[str, object] = {"cause": "still_starting"}
    while report["cause"] == "still_starting" and time.monotonic() < deadline:
        diagnosed = _cli("diagnose", name, "--json", "--expect", "jupyter")
        assert diagnosed.returncode == 1, diagnosed.stderr
        report = json.loads(diagnosed.stdout)
    assert report["cause"] == "loopback_only", report
    assert {"cause", "evidence", "fix"} <= set(report), report.keys()
    cleaned = _cli("cleanup", "--session", cli_session, "--json")
    assert cleaned.returncode == 0, cleaned.stderr
    assert name in json.loads(cleaned.stdout)["removed"], cleaned.stdout
    assert not _mine(engine, cli_session), "cleanup left the session's containers"


def test_run_refuses_a_privileged_line_with_exit_2(engine: Engine, cli_session: str) -> None:
    """A policy refusal is bad input: exit 2, the flag named, nothing started."""
    result = _cli("run", "--", "docker", "run", "--privileged", "portbinding/notebook:1.0")
    assert result.returncode == 2, result.stderr
    assert "--privileged" in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not _mine(engine, cli_session), "a refused line must not start anything"


@pytest.mark.parametrize("name", ["pbl-no-such-container", ""])
def test_diagnose_a_container_that_does_not_exist_is_a_clear_error(engine: Engine, name: str) -> None:
    """diagnose no-such-container (or an empty name): exit 2 (bad input, as the README says) with a
    hint to list containers -- never "the engine stopped answering"."""
    result = _cli("diagnose", name)
    assert result.returncode == 2, f"a misspelt container name is bad input (exit 2): {result.returncode}"
    assert "There is no container called" in result.stderr and "portbinding ps" in result.stderr, (
        result.stderr
    )


def test_run_on_a_taken_host_port_explains_and_suggests_a_free_one(
    engine: Engine, host_port: int, cli_session: str
) -> None:
    """Two runs on one host port: the second is refused with PortInUse, a suggestion, and no leftover."""
    line = ["docker", "run", "-d", "-p", f"{host_port}:8888", "portbinding/notebook:1.0"]
    first = _cli("run", "--json", "--wait", "0", "--", *line)
    try:
        assert first.returncode in (0, 1), first.stderr
        second = _cli("run", "--json", "--", *line)
        assert second.returncode == 4, second.stdout
        error = json.loads(second.stdout)
        assert error["error"] == "PortInUse" and str(host_port) in error["message"], error
        assert "publish on a free host port" in error["hint"], error
        labelled = _mine(engine, cli_session)
        assert len(labelled) == 1, f"the failed run left a container behind: {[c.name for c in labelled]}"
    finally:
        _cli("cleanup", "--session", cli_session)


def test_ps_lists_course_containers_with_their_ports(engine: Engine, host_port: int) -> None:
    """ps --json shows a running course container and its published port."""
    from portbinding.command import parse_run

    container = engine.run(
        parse_run(f"docker run -d -p 127.0.0.1:{host_port}:8000 portbinding/scoring-api:1.0")
    )
    result = _cli("ps", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)["containers"]}
    assert container.name in rows, rows.keys()
    assert any(str(host_port) in port for port in rows[container.name]["ports"]), rows[container.name]


def test_run_of_a_scenario_that_answers_with_the_wrong_service_is_not_called_reachable(
    engine: Engine, cli_session: str
) -> None:
    """run wrong_service: something answers HTTP (the probe says ok), yet it is not the service asked
    for -- run says what the diagnosis says and exits 1, never "open: URL"."""
    started = _cli("run", "wrong_service", "--json", "--wait", "60")
    payload = json.loads(started.stdout)
    assert payload["probe"]["outcome"] == "ok", f"the scenario should answer HTTP: {payload}"
    assert payload["cause"] == "wrong_service", f"run trusted any answer: {payload}"
    assert started.returncode == 1, (started.returncode, payload)


def test_run_a_scenario_publishes_on_loopback_and_says_what_it_does(engine: Engine, cli_session: str) -> None:
    """run ok: published on 127.0.0.1 only (as the lessons teach), progress first, then the URL."""
    started = _cli("run", "ok", "--wait", "60")
    assert started.returncode == 0, (started.returncode, started.stdout, started.stderr)
    (container,) = _mine(engine, cli_session)
    bindings = [b for spec in (container.ports or {}).values() for b in spec or []]
    assert bindings and all(b["HostIp"] == "127.0.0.1" for b in bindings), (
        f"`portbinding run ok` published on every address: {container.ports}"
    )
    port = bindings[0]["HostPort"]
    progress = started.stderr
    assert "Starting" in progress and "Waiting" in progress, f"run said nothing while it worked: {progress!r}"
    url = f"http://127.0.0.1:{port}/"
    assert url in started.stdout, f"run did not print the URL to open ({url}): {started.stdout!r}"
