"""Rootless Podman through its Docker API socket: what the course sees differently from Docker.

Measured on Debian 12 (Podman 4.3.1, rootless, slirp4netns + netavark, cgroup v1). Published
ports are served by ``rootlessport``, a process of the Podman user listening on the host, not by
docker-proxy plus iptables DNAT. So a broken mapping looks the same from every host address:

| situation                      | 127.0.0.1:H            | host's own IP:H        |
|--------------------------------|------------------------|------------------------|
| listens 127.0.0.1 in container | reset (curl 56)        | reset (Docker: 7)      |
| wrong container port           | reset (curl 56)        | reset (Docker: 7)      |
| crashed before listening       | refused (curl 7)       | refused (curl 7)       |

A host port below 1024 is refused at start, and the container's own IP lives in Podman's private
network namespace, with no route from the host. Run with
``DOCKER_HOST=$(python -m portbinding.podman) PORTBINDING_TEST_ENGINE=podman``; the one
docker-kind test here sets that engine up from scratch, so `make test` proves the set-up works.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from docker.models.containers import Container

from portbinding import podman
from portbinding.builder import missing_images
from portbinding.command import parse_run
from portbinding.diagnose import diagnose, look_inside, spec_from_container
from portbinding.discovery import connect
from portbinding.engine import COURSE_LABEL, OWNER_LABEL, SESSION_LABEL, Engine, free_port
from portbinding.errors import ContainerFailed, PortInUse
from portbinding.probe import OUTCOME_CLASS, ProbeResult, probe_http, wait_until

on_podman = pytest.mark.engines("podman", reason="measures rootless Podman's own behaviour")
CLI = [sys.executable, "-m", "portbinding"]


def _host_address() -> str:
    """This machine's own (non-loopback) IPv4 address: the source of its default route."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("192.0.2.1", 9))  # a UDP "connect" sends nothing; it only picks a route
        return str(sock.getsockname()[0])


def _both_paths(port: int) -> dict[str, ProbeResult]:
    """One probe through the loopback address and one through the host's own address."""
    return {
        host: probe_http(f"http://{host}:{port}/api", timeout=2) for host in ("127.0.0.1", _host_address())
    }


def _classes(results: dict[str, ProbeResult]) -> dict[str, str]:
    return {host: OUTCOME_CLASS[result.outcome] for host, result in results.items()}


@pytest.fixture
def start(engine: Engine) -> Callable[[str], tuple[Container, int]]:
    """Run a line with {port} replaced by a free host port; wait until something listens inside."""

    def run(line: str) -> tuple[Container, int]:
        port = free_port()
        container = engine.run(parse_run(line.format(port=port)))
        listening = wait_until(
            lambda: bool(look_inside(engine, container)[0]),
            timeout=30,
            alive=lambda: engine.is_running(container),
        )
        assert listening, f"nothing listened inside {container.name}: {engine.logs(container)[-400:]}"
        return container, port

    return run


@on_podman
def test_find_engine_reports_rootless_podman_reached_on_localhost(engine: Engine) -> None:
    """doctor's engine facts: kind podman, rootless, a version, ports reached at 127.0.0.1."""
    info = engine.info
    assert info.kind == "podman" and info.rootless, info
    assert info.version[0].isdigit() and info.api_version.startswith("1."), info
    assert info.publish_host == "127.0.0.1", info
    result = subprocess.run(
        [*CLI, "doctor", "--json"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    reported = json.loads(result.stdout)["engine"]
    assert reported["kind"] == "podman" and reported["rootless"] is True, reported
    assert reported["publish_host"] == "127.0.0.1", reported


@on_podman
def test_a_loopback_server_resets_through_every_host_address(
    start: Callable[[str], tuple[Container, int]],
) -> None:
    """Jupyter on 127.0.0.1 inside: rootlessport accepts, then resets -- on the host's own IP too."""
    _, port = start("docker run -d -p {port}:8888 portbinding/notebook-loopback:1.0")
    classes = _classes(_both_paths(port))
    # Docker refuses on the host's own IP (DNAT to a closed port); rootlessport listens there.
    assert set(classes.values()) == {"reset_or_empty"}, classes


@on_podman
def test_a_wrong_container_port_resets_through_every_host_address(
    start: Callable[[str], tuple[Container, int]], engine: Engine
) -> None:
    """-p H:9999 to a server on 8888: reset on both paths; the diagnosis still names the real port."""
    container, port = start("docker run -d -p {port}:9999 portbinding/notebook:1.0")
    classes = _classes(_both_paths(port))
    assert set(classes.values()) == {"reset_or_empty"}, classes
    found = diagnose(engine, container, container_port=9999)
    assert found.cause == "wrong_container_port", found.explain()
    assert found.fix.run is not None and f"-p {port}:8888" in found.fix.run.to_cli(), found.explain()


@on_podman
def test_a_crashed_container_refuses_because_rootlessport_exits_with_it(engine: Engine) -> None:
    """The app exits before listening: its rootlessport goes too, so every path is refused (curl 7)."""
    port = free_port()
    container = engine.run(parse_run(f"docker run -d -p {port}:8000 portbinding/crash-before-listen:1.0"))
    assert wait_until(lambda: engine.state(container).get("Status") == "exited", timeout=30), (
        "it never exited"
    )
    classes = _classes(_both_paths(port))
    assert set(classes.values()) == {"refused"}, classes


@on_podman
def test_a_privileged_host_port_is_refused_at_start_and_a_high_one_offered(engine: Engine) -> None:
    """-p 80:8888: rootlessport may not bind below 1024; a clear error, -p 8080 offered, nothing left."""
    lowest = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    assert lowest > 80, f"this machine lets users bind from port {lowest}: the refusal cannot happen here"
    before = {c.id for c in engine.course_containers(session=engine.session)}
    with pytest.raises(ContainerFailed) as caught:
        engine.run(parse_run("docker run -d -p 80:8888 portbinding/notebook:1.0"))
    text = str(caught.value)
    assert "rootlessport cannot expose privileged port 80" in text, text
    assert "ip_unprivileged_port_start" in text and "Host port 80 is below 1024" in text, text
    offered = re.search(r"-p (\d+):<container port>", caught.value.hint)
    assert offered and int(offered.group(1)) >= 1024, caught.value.hint
    after = {c.id for c in engine.course_containers(session=engine.session)}
    assert after == before, "the failed start left a container behind"


@on_podman
def test_a_port_held_on_the_host_is_port_in_use_in_rootlessport_s_words(engine: Engine) -> None:
    """A host socket holds the port: PortInUse names it, quoting rootlessport's bind error."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        port = int(holder.getsockname()[1])
        with pytest.raises(PortInUse) as caught:
            engine.run(parse_run(f"docker run -d -p {port}:8888 portbinding/notebook:1.0"))
    assert caught.value.port == port, caught.value
    assert "rootlessport listen tcp" in str(caught.value), str(caught.value)
    assert "address already in use" in str(caught.value), str(caught.value)


@on_podman
def test_the_container_ip_has_no_route_from_the_host(
    start: Callable[[str], tuple[Container, int]], engine: Engine
) -> None:
    """The container's IP is in Podman's private namespace: no host route leads there, yet diagnosis works."""
    container, _ = start("docker run -d -p {port}:8888 portbinding/notebook-loopback:1.0")
    container.reload()
    address = ipaddress.ip_address(container.attrs["NetworkSettings"]["IPAddress"])
    routed = [network for network in _host_routes() if address in network and network.prefixlen > 0]
    assert not routed, f"{address} is routed on this host through {routed}: not rootless networking"
    found = diagnose(engine, container, container_port=8888)
    assert found.cause == "loopback_only", found.explain()


def _host_routes() -> list[ipaddress.IPv4Network]:
    """The IPv4 routes of this host, from /proc/net/route (little-endian hex)."""
    networks = []
    for line in Path("/proc/net/route").read_text().splitlines()[1:]:
        fields = line.split()
        destination = ipaddress.IPv4Address(bytes.fromhex(fields[1])[::-1])
        mask = ipaddress.IPv4Address(bytes.fromhex(fields[7])[::-1])
        networks.append(ipaddress.IPv4Network(f"{destination}/{mask}", strict=False))
    return networks


@on_podman
def test_limits_are_recorded_only_where_rootless_podman_can_enforce_them(engine: Engine) -> None:
    """Labels always; memory/pids/CPU limits only with cgroup v2 -- on cgroup v1 Podman ignores them."""
    container = engine.run(parse_run("docker run -d scoring-api:1.0"))
    container.reload()
    labels = container.labels
    assert labels[COURSE_LABEL] == "port-binding-lab" and labels[SESSION_LABEL] == engine.session, labels
    assert labels[OWNER_LABEL] == engine.owner, labels
    cgroup = str(engine.client.info().get("CgroupVersion"))
    memory = container.attrs["HostConfig"]["Memory"]
    # Podman says "Resource limits are not supported and ignored on cgroups V1 rootless systems".
    assert memory == (512 * 1024 * 1024 if cgroup == "2" else 0), f"cgroup v{cgroup}: Memory={memory}"


@on_podman
def test_the_fix_line_leaves_out_what_podman_adds_to_every_container(engine: Engine) -> None:
    """Podman adds container=podman, TERM, HOME, HOSTNAME and localhost/: none of them reach a fix line."""
    container = engine.run(parse_run("docker run -d -e MODEL_PATH=/app/model.json scoring-api:1.0"))
    container.reload()
    env = container.attrs["Config"]["Env"]
    assert "container=podman" in env and container.attrs["Config"]["Image"].startswith("localhost/"), env
    spec = spec_from_container(
        container.attrs, image_config=engine.client.images.get("scoring-api:1.0").attrs["Config"]
    )
    assert spec.to_cli() == "docker run -d -e MODEL_PATH=/app/model.json scoring-api:1.0", spec.to_cli()


# ------------------------------------------------------------------------------ set-up, from Docker


@pytest.fixture
def podman_url(course_images: object) -> str:
    """ensure_podman() from Docker's images (built first by course_images)."""
    return podman.ensure_podman()


@pytest.mark.engines("docker", reason="sets rootless Podman up from Docker's images (make test's first run)")
def test_ensure_podman_gives_a_socket_with_every_course_image_and_is_fast_the_second_time(
    podman_url: str,
) -> None:
    """The URL answers /_ping, every course image is there, and a second call returns in seconds."""
    assert podman_url.startswith("unix:///run/user/") and podman_url.endswith("/podman/podman.sock"), (
        podman_url
    )
    assert podman.ping(podman_url), f"nothing answers at {podman_url}"
    client = connect(podman_url, timeout=30)
    try:
        assert "podman" in json.dumps(client.version()).lower(), client.version()
        assert not missing_images(client), "course images missing on Podman"
    finally:
        client.close()
    started = time.monotonic()
    assert podman.ensure_podman() == podman_url, "a second ensure_podman() must find the same socket"
    assert time.monotonic() - started < 10, "an idempotent ensure_podman() should not redo the set-up"


@pytest.mark.engines("docker", reason="the Docker side of test_the_container_ip_has_no_route_from_the_host")
def test_on_docker_the_container_ip_is_routed_from_the_host(engine: Engine) -> None:
    """Contrast: Docker's bridge puts the container IP on a host route (docker0)."""
    container = engine.run(parse_run("docker run -d scoring-api:1.0"))
    container.reload()
    address = ipaddress.ip_address(container.attrs["NetworkSettings"]["IPAddress"])
    routed = [network for network in _host_routes() if address in network and network.prefixlen > 0]
    assert routed, f"{address} has no host route besides the default one"
