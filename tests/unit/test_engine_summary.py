"""Each lesson opens by saying which engine runs its containers and what differs there."""

from __future__ import annotations

from typing import Any, cast

import docker.errors

from portbinding.command import parse_run
from portbinding.discovery import EngineInfo, EngineKind
from portbinding.engine import Engine
from portbinding.widgets.session import engine_summary


def _engine(kind: EngineKind, *, publish_host: str = "127.0.0.1", rootless: bool = False) -> Engine:
    info = EngineInfo(
        url="unix:///x.sock",
        source="test",
        kind=kind,
        version="9.9",
        api_version="1.41",
        rootless=rootless,
        publish_host=publish_host,
        publish_host_reason="because",
    )
    return Engine(cast(Any, None), info)


def test_docker_on_this_machine_is_named_with_where_ports_open() -> None:
    text = engine_summary(_engine("docker"))
    assert "Docker 9.9" in text and "127.0.0.1" in text


def test_a_remote_engine_says_ports_open_on_its_host_not_localhost() -> None:
    text = engine_summary(_engine("docker", publish_host="10.1.2.3"))
    assert "10.1.2.3" in text and "not on this machine's localhost" in text


def test_rootless_podman_names_its_port_forwarder() -> None:
    text = engine_summary(_engine("podman", rootless=True))
    assert "rootless Podman" in text and "rootlessport" in text


def test_the_process_engine_says_it_runs_local_processes_and_what_differs() -> None:
    text = engine_summary(_engine("process"))
    assert "process engine" in text and "local processes" in text and "What differs" in text


def test_a_taken_port_names_the_list_command_of_the_engine_in_use() -> None:

    taken = docker.errors.APIError(
        "start", explanation="listen tcp 0.0.0.0:8888: bind: address already in use"
    )
    spec = parse_run("docker run -d -p 8888:8888 portbinding/notebook:1.0")
    hints = {kind: _engine(kind)._start_error(spec, taken).hint for kind in ("docker", "podman", "process")}
    assert "`docker ps`" in hints["docker"]
    assert "`podman ps`" in hints["podman"]
    assert "`portbinding ps`" in hints["process"]
