"""The process engine against Docker: every scenario looks the same to a learner on both.

The process engine exists for Binder, where there is no container engine. It is only worth
having if the lessons teach the same thing on it: for every scenario in the catalogue, the
host's probe must land in the same outcome class and the diagnosis must name the same cause.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from portbinding.command import RunSpec
from portbinding.diagnose import Diagnosis, diagnose
from portbinding.discovery import connect, engine_info
from portbinding.engine import Engine, free_port
from portbinding.errors import ContainerFailed
from portbinding.images import LOCAL_BASE
from portbinding.ports import parse_publish
from portbinding.probe import OUTCOME_CLASS, probe_http
from portbinding.process import launch
from portbinding.scenarios import SCENARIOS, Scenario, scenario
from tests.support.settle import settle

pytestmark = pytest.mark.engines("docker", reason="compares the process engine with Docker side by side")


@pytest.fixture(scope="module")
def process_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A private process-engine daemon, stopped (and its containers ended) afterwards."""
    state: Path = tmp_path_factory.mktemp("process-engine")
    url = launch.ensure_running(state)
    client = connect(url)
    try:
        with Engine(client, engine_info(url, client, source="test"), owner="tests") as engine:
            yield engine
    finally:
        client.close()
        launch.stop(state)
    assert not launch.answers(state), "the process engine is still running after stop()"


def _observe(engine: Engine, item: Scenario) -> tuple[str, str]:
    """Run ``item`` on ``engine``: the host probe's outcome class and the diagnosed cause."""
    container = engine.run(item.with_host_port(free_port()))
    try:
        settle(engine, container, item)
        url = engine.url(container, item.container_port, item.path)
        outcome = OUTCOME_CLASS[probe_http(url).outcome] if url else "not_published"
        found = diagnose(
            engine, container, container_port=item.container_port, expect=item.expect, path=item.path
        )
        return outcome, found.cause
    finally:
        engine.remove(container)


@pytest.mark.parametrize("item", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_each_scenario_looks_the_same_on_the_process_engine_as_on_docker(
    engine: Engine, process_engine: Engine, item: Scenario
) -> None:
    on_docker = _observe(engine, item)
    on_processes = _observe(process_engine, item)
    assert on_processes == on_docker, (
        f"{item.id}: Docker gives {on_docker}, the process engine {on_processes}"
    )
    assert on_docker[1] == item.cause, f"{item.id}: Docker itself diagnosed {on_docker[1]}"


def test_the_process_engine_says_what_it_is(process_engine: Engine) -> None:
    assert process_engine.info.kind == "process"
    assert process_engine.info.publish_host == "127.0.0.1"
    assert "local processes" in process_engine.info.describe()


def test_a_command_that_cannot_start_leaves_no_port_published(process_engine: Engine) -> None:
    port = free_port()
    spec = RunSpec(
        image=LOCAL_BASE, command=("no-such-program",), publish=tuple(parse_publish(f"127.0.0.1:{port}:8000"))
    )
    with pytest.raises(ContainerFailed, match="executable file not found"):
        process_engine.run(spec)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # free again: nothing was left listening on it
    assert not process_engine.course_containers(session=process_engine.session)


# Situations beyond the catalogue that the process engine can show too: each is set up the same
# way on both engines, and the diagnosis must name the same cause by the same rule.
Situation = Callable[[Engine], Diagnosis]


def _stopped(engine: Engine) -> Diagnosis:
    """docker stop on a healthy notebook: stopped (SIGTERM), not crashed."""
    item = scenario("ok")
    container = engine.run(item.with_host_port(free_port()))
    settle(engine, container, item)
    engine.stop(container)
    return diagnose(engine, container, container_port=8888)


def _asked_port_nothing_uses(engine: Engine) -> Diagnosis:
    """diagnose --port 9999 on a healthy notebook: use 8888, not the line already running."""
    item = scenario("ok")
    container = engine.run(item.with_host_port(free_port()))
    settle(engine, container, item)
    return diagnose(engine, container, container_port=9999)


def _tcp_through_the_published_port(engine: Engine) -> Diagnosis:
    """--expect tcp on a healthy notebook: the published port holds the connection, ok."""
    item = scenario("ok")
    container = engine.run(item.with_host_port(free_port()))
    settle(engine, container, item)
    return diagnose(engine, container, container_port=8888, expect="tcp")


def _tcp_to_a_loopback_server(engine: Engine) -> Diagnosis:
    """--expect tcp through the proxy to a loopback-only server: the hang-up is no false ok."""
    item = scenario("loopback_only")
    container = engine.run(item.with_host_port(free_port()))
    settle(engine, container, item)
    return diagnose(engine, container, container_port=8888, expect="tcp")


SITUATIONS: tuple[Situation, ...] = (
    _stopped,
    _asked_port_nothing_uses,
    _tcp_through_the_published_port,
    _tcp_to_a_loopback_server,
)


@pytest.mark.parametrize("situation", SITUATIONS, ids=[s.__name__.strip("_") for s in SITUATIONS])
def test_situations_beyond_the_catalogue_are_diagnosed_alike(
    engine: Engine, process_engine: Engine, situation: Situation
) -> None:
    on_docker, on_processes = situation(engine), situation(process_engine)
    assert (on_processes.cause, on_processes.rule) == (on_docker.cause, on_docker.rule), (
        f"{situation.__name__}: Docker {on_docker.cause}/{on_docker.rule}, process engine "
        f"{on_processes.cause}/{on_processes.rule}\n{on_docker.explain()}\n---\n{on_processes.explain()}"
    )
    assert on_docker.cause != "crashed", on_docker.explain()
