"""The wire table's measured rows, measured: what curl and a bare TCP connect really report.

``portbinding.lesson.wire`` tells learners, engine by engine, whether a request to a published
port is answered, refused or reset. Its "measured" rows are claims about real engines, so they
are checked here against the real thing, with the real ``curl``: on the engine the suite runs on
(Docker with the userland proxy on; `make test`'s engine matrix runs this file on rootless
Podman 4 and on the process engine too), and on a second dockerd started with
``--userland-proxy=false`` in a network namespace of its own.

Six containers of one light image make the six situations (a command override stands in for a
crash and for a slow start, so every engine kind can run them), then each path is knocked on.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import docker
import pytest
from docker.models.containers import Container

from portbinding.command import RunSpec
from portbinding.discovery import EngineInfo
from portbinding.engine import Engine, free_port
from portbinding.lesson.hostview import own_addresses
from portbinding.lesson.wire import PATHS, ROW, SITUATIONS, EngineRow, Situation, WirePath, engine_row
from portbinding.ports import PortMapping, bracket_host
from portbinding.probe import wait_until
from tests.engine.conftest import engine_kind
from tests.support.challenge import CURL_EXIT_CLASS
from tests.support.netns import RemoteHost, remote_host

IMAGE = "portbinding/scoring-api:1.0"
APP_PORT = 8000
WRONG_PORT = 9999
# Which row each engine the suite runs on must be recognised as, on this project's machines.
EXPECTED_ROW = {"docker": "docker-proxy", "podman": "podman4", "process": "process"}
Runner = Callable[[list[str]], subprocess.CompletedProcess[str]]

_TCP = (
    "import socket, sys\n"
    "try:\n    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()\n"
    "except ConnectionRefusedError:\n    sys.exit(7)\n"
    "except OSError:\n    sys.exit(28)\n"
)


def _spec(situation: Situation, host_port: int) -> RunSpec:
    publish = (PortMapping(APP_PORT, "tcp", "", host_port),)
    if situation == "loopback_only":
        return RunSpec(image=IMAGE, publish=publish, env=(("BIND_HOST", "127.0.0.1"),), detach=True)
    if situation == "wrong_container_port":
        return RunSpec(image=IMAGE, publish=(PortMapping(WRONG_PORT, "tcp", "", host_port),), detach=True)
    if situation == "not_published":
        return RunSpec(image=IMAGE, detach=True)
    if situation == "crashed":
        command = ("python3", "-c", "raise SystemExit('model file missing')")
        return RunSpec(image=IMAGE, publish=publish, detach=True, command=command)
    if situation == "still_starting":
        command = ("python3", "-c", "import time; time.sleep(600)")
        return RunSpec(image=IMAGE, publish=publish, detach=True, command=command)
    return RunSpec(image=IMAGE, publish=publish, detach=True)


@dataclass(frozen=True)
class Started:
    situation: Situation
    host_port: int
    container_ip: str
    target_port: int  # the container port -p names (the app's own where nothing is published)


def _container_ip(attrs: dict[str, object]) -> str:
    settings = attrs.get("NetworkSettings") or {}
    assert isinstance(settings, dict), f"NetworkSettings is {settings!r}, not a mapping"
    address = str(settings.get("IPAddress") or "")
    for network in (settings.get("Networks") or {}).values():
        address = address or str(network.get("IPAddress") or "")
    return address


def _start_all(engine: Engine, runner: Runner) -> list[Started]:
    started = []
    for situation in SITUATIONS:
        host_port = free_port()
        container = engine.run(_spec(situation, host_port))
        settled = wait_until(partial(_settled, engine, container, situation), timeout=60)
        assert settled, f"{situation}: the container never reached its state ({engine.state(container)})"
        target = WRONG_PORT if situation == "wrong_container_port" else APP_PORT
        started.append(Started(situation, host_port, _container_ip(container.attrs), target))
    return started


def _settled(engine: Engine, container: Container, situation: Situation) -> bool:
    state = engine.state(container)
    if situation == "crashed":
        return state.get("Status") == "exited"
    if situation == "still_starting":
        return state.get("Status") == "running"
    return any(item.port == APP_PORT for item in engine.listeners(container))


def _curl(runner: Runner, url: str) -> str:
    """curl's verdict: ``answers`` only when the scoring API itself answered (an egress proxy or
    another host answering for an address that does not route to the container is not it)."""
    done = runner(["curl", "-sS", "--noproxy", "*", "--max-time", "3", "-w", "\n%{http_code}", url])
    body, _, code = done.stdout.rpartition("\n")
    if done.returncode == 0:
        return "answers" if code == "200" and '"status": "ok"' in body else f"someone else ({code})"
    return _outcome(done.returncode)


def _tcp(runner: Runner, host: str, port: int) -> str:
    return _outcome(runner([sys.executable, "-c", _TCP, host, str(port)]).returncode)


def _outcome(code: int) -> str:
    found = CURL_EXIT_CLASS.get(code, f"exit {code}")
    return {"ok": "answers", "reset_or_empty": "reset"}.get(found, found)


def _measure(
    runner: Runner, started: list[Started], host_ip: str | None
) -> dict[tuple[Situation, WirePath], str]:
    seen: dict[tuple[Situation, WirePath], str] = {}
    for item in started:
        seen[(item.situation, "loopback")] = _curl(runner, f"http://127.0.0.1:{item.host_port}/health")
        seen[(item.situation, "tcp")] = _tcp(runner, "127.0.0.1", item.host_port)
        if host_ip:
            seen[(item.situation, "host_ip")] = _curl(runner, f"http://{host_ip}:{item.host_port}/health")
        if item.container_ip:
            url = f"http://{bracket_host(item.container_ip)}:{item.target_port}/health"
            seen[(item.situation, "container_ip")] = _curl(runner, url)
    return seen


def _mismatches(row: EngineRow, seen: dict[tuple[Situation, WirePath], str]) -> list[str]:
    wrong = []
    for (situation, path), outcome in sorted(seen.items()):
        claimed = row.cell(situation, path).outcome
        if claimed == "depends":
            continue
        if path == "tcp" and claimed == "reset":
            claimed = "answers"  # a bare connect only sees the handshake, which the forwarder completes
        # "unreachable" claims only that the host cannot get an answer from that address.
        agrees = outcome != "answers" if claimed == "unreachable" else outcome == claimed
        if not agrees:
            wrong.append(f"{situation} via {path}: the table says {claimed}, measured {outcome}")
    return wrong


def _local(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)


def test_the_engines_own_row_is_recognised_and_agrees_with_curl(engine: Engine) -> None:
    """The row engine_row() picks for this engine is the expected one, and every cell of it that
    this machine can measure is what curl (and a bare TCP connect) really report."""
    found = engine_row(engine)
    assert found.row is not None, f"no row for this engine: {found.why}"
    assert found.row.key == EXPECTED_ROW[engine_kind()], f"recognised as {found.row.key}: {found.why}"
    assert found.row.evidence == "measured", f"{found.row.key} is only cited, yet it runs here"
    started = _start_all(engine, _local)
    local = engine.info.publish_host in ("127.0.0.1", "localhost")
    addresses = own_addresses() if local else []
    seen = _measure(_local, started, addresses[0] if addresses else None)
    measured_paths = {path for _, path in seen}
    assert {"loopback", "tcp"} <= measured_paths, f"measured only {measured_paths}"
    wrong = _mismatches(found.row, seen)
    assert not wrong, f"{found.row.title}: the table disagrees with this engine:\n" + "\n".join(wrong)


@pytest.fixture(scope="module")
def proxyless(docker_client: docker.DockerClient) -> Iterator[RemoteHost]:
    """A second Docker Engine, --userland-proxy=false, in a network namespace of its own."""
    with remote_host(docker_client, [IMAGE], dockerd_args=["--userland-proxy=false"]) as host:
        yield host


@pytest.mark.engines("docker", reason="starts a second dockerd (--userland-proxy=false)")
def test_without_the_userland_proxy_the_row_is_recognised_and_agrees_with_curl(proxyless: RemoteHost) -> None:
    """With --userland-proxy=false every path is NAT: the docker-noproxy row, measured inside the
    engine's own network namespace (its 127.0.0.1 and its own address)."""
    host = proxyless
    info = EngineInfo(
        url=host.unix_url,
        source="test",
        kind="docker",
        version=str(host.client.version().get("Version")),
        api_version="",
        rootless=False,
        publish_host="127.0.0.1",
        publish_host_reason="test",
    )
    with Engine(host.client, info, owner="tests") as engine:
        found = engine_row(engine)
        assert found.row is not None and found.row.key == "docker-noproxy", f"recognised as {found}"

        def inside(argv: list[str]) -> subprocess.CompletedProcess[str]:
            return _local(["ip", "netns", "exec", host.netns, *argv])

        started = _start_all(engine, inside)
        seen = _measure(inside, started, host.address)
        assert {path for _, path in seen} == set(PATHS), f"not every path was measured: {sorted(seen)}"
        wrong = _mismatches(ROW["docker-noproxy"], seen)
        assert not wrong, "the docker-noproxy row disagrees with the engine:\n" + "\n".join(wrong)
