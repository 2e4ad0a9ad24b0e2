"""probe_http agrees with curl on real published ports: 0, 7, 52/56 (one class), 28."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from docker.models.containers import Container

from portbinding.command import RunSpec, parse_run
from portbinding.diagnose import look_inside
from portbinding.engine import Engine, free_port
from portbinding.ports import parse_publish
from portbinding.probe import OUTCOME_CLASS, probe_http, wait_until, wait_until_ready

CURL_CLASS = {0: "ok", 7: "refused", 52: "reset_or_empty", 56: "reset_or_empty", 28: "timeout"}
# Accepts connections (the kernel completes them from the backlog) but never answers.
SILENT_SERVER = (
    "import socket, time; s = socket.socket(); s.bind(('0.0.0.0', 8000)); s.listen(16); time.sleep(600)"
)


def _curl(url: str) -> int:
    result = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "--noproxy", "*", "--max-time", "2", url],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return result.returncode


def _listening(engine: Engine, container: Container) -> bool:
    return bool(look_inside(engine, container)[0])


@pytest.fixture
def published(engine: Engine):  # type: ignore[no-untyped-def]
    """Start a container for a situation and return the URL to probe from the host."""

    def start(situation: str) -> str:
        port = free_port()
        if situation == "refused":
            return f"http://127.0.0.1:{port}/api"
        if situation == "timeout":
            spec = RunSpec(
                image="portbinding/python-base:bookworm",
                publish=tuple(parse_publish(f"127.0.0.1:{port}:8000")),
                command=("python3", "-c", SILENT_SERVER),
            )
            container = engine.run(spec)
            assert wait_until(lambda: _listening(engine, container), timeout=20), (
                "silent server never listened"
            )
            return f"http://127.0.0.1:{port}/"
        image = "portbinding/notebook:1.0" if situation == "ok" else "portbinding/notebook-loopback:1.0"
        container = engine.run(parse_run(f"docker run -d -p 127.0.0.1:{port}:8888 {image}"))
        assert wait_until(lambda: _listening(engine, container), timeout=30), "Jupyter never listened"
        if situation == "ok":
            ready = wait_until_ready(engine, container, 8888, path="/api", timeout=30)
            assert ready.ok, f"Jupyter never answered on the published port: {ready.detail}"
        return f"http://127.0.0.1:{port}/api"

    return start


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is the reference and is not installed")
@pytest.mark.parametrize("situation", ["ok", "refused", "reset_or_empty", "timeout"])
def test_probe_outcome_class_matches_curl_exit_code(published, situation: str) -> None:  # type: ignore[no-untyped-def]
    """The probe and curl, on the same URL, land in the same class -- the one the situation predicts."""
    url = published(situation)
    probe = probe_http(url, timeout=2)
    curl = _curl(url)
    assert CURL_CLASS.get(curl) == situation, f"curl exit {curl} for {situation} at {url}"
    assert OUTCOME_CLASS[probe.outcome] == situation, f"probe said {probe.outcome}: {probe.detail}"
