"""Diagnosis where the engine is elsewhere or forwards differently: a remote engine, no userland proxy.

One second dockerd in a network namespace (see netns.py), started with ``--userland-proxy=false``:

* from here, over tcp://, it is a remote engine: a port published on its 127.0.0.1 cannot be
  reached from this machine (``unusable_host_address``), and the helper container -- the way in
  that works on any engine -- looks inside a tool-less container there;
* from inside its namespace it is a local engine without docker-proxy: a loopback-only server
  is REFUSED on 127.0.0.1 instead of reset, and the diagnosis still names the cause from the
  evidence and says why the symptom differs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import docker
import pytest

from portbinding.builder import BuiltImage
from portbinding.command import RunSpec
from portbinding.diagnose import diagnose
from portbinding.discovery import connect, engine_info
from portbinding.engine import Engine, free_port
from portbinding.images import LOCAL_BASE
from portbinding.ports import PortMapping
from portbinding.probe import probe_http, wait_until
from portbinding.settings import PUBLISH_HOST_ENV
from tests.support.foreign import busybox, cli
from tests.support.netns import RemoteHost, remote_host

__all__ = ["busybox"]  # the fixture, imported for this module's tests

pytestmark = pytest.mark.engines("docker", reason="starts a second dockerd in its own network namespace")

HTTPD = ("httpd", "-f", "-v", "-h", "/www", "-p")


@pytest.fixture(scope="module")
def proxyless(
    docker_client: docker.DockerClient, course_images: list[BuiltImage], busybox: str
) -> Iterator[RemoteHost]:
    with remote_host(docker_client, [LOCAL_BASE, busybox], dockerd_args=["--userland-proxy=false"]) as host:
        yield host


@pytest.fixture
def remote_engine(proxyless: RemoteHost) -> Iterator[Engine]:
    """The namespace's engine seen from here, as DOCKER_HOST=tcp://ADDRESS:2375 would give it."""
    client = connect(proxyless.tcp_url)
    try:
        with Engine(client, engine_info(proxyless.tcp_url, client, source="test"), owner="tests") as engine:
            yield engine
    finally:
        client.close()


def test_a_port_published_on_a_remote_loopback_is_unusable_from_here(
    remote_engine: Engine, busybox: str
) -> None:
    """-p 127.0.0.1:H:80 on the remote engine: refused from here; the fix publishes where we can reach."""
    assert remote_engine.publish_host != "127.0.0.1", remote_engine.info.describe()
    spec = RunSpec(
        busybox, publish=(PortMapping(80, "tcp", "127.0.0.1", free_port()),), command=(*HTTPD, "0.0.0.0:80")
    )
    container = remote_engine.run(spec)
    assert wait_until(lambda: bool(remote_engine.state(container).get("Pid")), timeout=20), "it never started"
    found = diagnose(remote_engine, container, via="helper")
    assert found.cause == "unusable_host_address", found.explain()
    assert found.evidence.look == "helper" and found.evidence.listeners == ["0.0.0.0:80"], found.explain()
    assert found.fix.run is not None and "ssh -N -L" in found.fix.summary, found.fix
    for command in found.fix.commands:
        cli(remote_engine, command)  # as printed: rm -f the old one (it holds the port), run the fix
    fixed = remote_engine.get(str(remote_engine.course_containers(session=remote_engine.session)[0].name))
    url = remote_engine.url(fixed, 80)
    assert url is not None and url.startswith(f"http://{remote_engine.publish_host}:"), url
    assert wait_until(lambda: probe_http(url).reachable, timeout=20), f"the fix is not reachable at {url}"
    again = diagnose(remote_engine, fixed)
    assert again.cause == "ok", again.explain()


def test_without_a_userland_proxy_a_loopback_server_is_refused_and_still_loopback_only(
    remote_engine: Engine, proxyless: RemoteHost, busybox: str
) -> None:
    """Diagnosed from inside the namespace (a local engine there): refused on 127.0.0.1, same cause."""
    spec = RunSpec(
        busybox, publish=(PortMapping(80, "tcp", "", free_port()),), command=(*HTTPD, "127.0.0.1:80")
    )
    container = remote_engine.run(spec)
    env = {**os.environ, "DOCKER_HOST": proxyless.unix_url, PUBLISH_HOST_ENV: "127.0.0.1"}
    command = ["nsenter", f"--net=/run/netns/{proxyless.netns}", sys.executable, "-m", "portbinding",
               "diagnose", str(container.name), "--json"]  # fmt: skip
    seen: list[dict[str, object]] = []

    def diagnosed() -> bool:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, env=env)
        assert done.returncode in (0, 1), done.stderr
        seen.append(json.loads(done.stdout))
        return seen[-1]["cause"] == "loopback_only"

    assert wait_until(diagnosed, timeout=30), f"never loopback_only: {seen[-1] if seen else None}"
    payload = seen[-1]
    evidence = payload["evidence"]
    assert isinstance(evidence, dict), payload
    host = evidence["host_probe"]
    assert isinstance(host, dict) and host["outcome"] == "refused", host
    notes = payload["notes"]
    assert isinstance(notes, list) and any("userland proxy" in str(note) for note in notes), notes
