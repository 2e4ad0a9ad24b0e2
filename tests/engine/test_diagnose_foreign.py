"""Diagnosis of containers unlike the course's, on the real engine: each cause found, each fix run.

The containers are a ``FROM scratch`` busybox (no shell, no cat, no python3: the diagnosis must
look in from outside), started with the lines a learner would type. For every situation the
diagnosis must name the cause, and its fix -- the commands it prints, run as printed (host ports
swapped for free ones) -- must make the service reachable: diagnosed ``ok`` and answering a
probe from this machine that is independent of the diagnosis.
"""

from __future__ import annotations

import contextlib
import random
import shlex
import uuid
from collections.abc import Callable, Iterator

import docker
import docker.errors
import pytest

from portbinding.diagnose import Diagnosis, Expect, Via, diagnose
from portbinding.engine import COURSE, COURSE_LABEL, Engine, free_port
from portbinding.images import LOCAL_BASE
from portbinding.probe import probe_http, probe_tcp, wait_until
from portbinding.procnet import listeners_from_proc, split_cat_output
from tests.support.foreign import HTTPD, busybox, cli, unique_name

ECHO_SERVER = "nc -ll -p 7000 -e /bin/busybox cat"  # a TCP echo service on port 7000, not HTTP

__all__ = ["busybox"]  # the fixture, imported for this module's tests

pytestmark = pytest.mark.engines("docker", reason="builds a FROM scratch image and runs docker CLI lines")


def _diagnosed(
    engine: Engine, name: str, wanted: Callable[[Diagnosis], bool], *, timeout: float = 20, **options: object
) -> Diagnosis:
    """Diagnose until ``wanted`` holds (a server needs a moment to listen); the last diagnosis."""
    seen: list[Diagnosis] = []

    def attempt() -> bool:
        seen.append(diagnose(engine, name, **options))  # type: ignore[arg-type]
        return wanted(seen[-1])

    wait_until(attempt, timeout=timeout)
    return seen[-1]


def _cause(
    engine: Engine, name: str, cause: str, *, when: Callable[[Diagnosis], bool] = bool, **options: object
) -> Diagnosis:
    """Diagnose until it says ``cause`` (and ``when`` holds: the state the test is about)."""
    found = _diagnosed(engine, name, lambda d: d.cause == cause and when(d), **options)  # type: ignore[arg-type]
    assert found.cause == cause, (
        f"{name}: expected {cause}, diagnosed {found.cause} ({found.rule})\n{found.explain()}"
    )
    return found


def _fix_makes_it_reachable(engine: Engine, found: Diagnosis, *, expect: Expect = "http") -> Diagnosis:
    """Run the fix's commands as printed, then: diagnosed ok, and a probe from here gets through."""
    assert found.fix.commands, f"{found.cause}: the fix has nothing to run\n{found.explain()}"
    for command in found.fix.commands:
        cli(engine, command)
    name = found.evidence.container
    fixed = _diagnosed(engine, name, lambda d: d.cause == "ok", expect=expect)
    assert fixed.cause == "ok", f"after {found.fix.commands}: diagnosed {fixed.cause}\n{fixed.explain()}"
    container = engine.get(name)
    port = fixed.evidence.container_port
    assert port is not None, fixed.explain()
    url = engine.url(container, port) or f"http://127.0.0.1:{port}/"
    if expect == "tcp":
        host, _, host_port = url.split("//", 1)[1].rstrip("/").rpartition(":")
        result = probe_tcp(host, int(host_port), hold=0.3)
        assert result.ok, f"{url}: {result.detail}"
    else:
        result = probe_http(url)
        assert result.reachable, f"{url}: {result.detail}"
    return fixed


# ------------------------------------------------------------------------------ busybox httpd


def test_httpd_on_loopback_in_a_scratch_image_is_loopback_only_read_from_outside(
    engine: Engine, busybox: str
) -> None:
    """The image's own CMD binds 127.0.0.1: read via /proc from the host, fixed by rebinding its command."""
    name = unique_name("loopback")
    cli(engine, f"docker run -d --name {name} -p 127.0.0.1:{free_port()}:80 {busybox}")
    found = _cause(engine, name, "loopback_only")
    assert found.evidence.look == "procfs", (
        f"a tool-less image is looked into from outside\n{found.explain()}"
    )
    assert found.evidence.listeners == ["127.0.0.1:80"], found.explain()
    assert "0.0.0.0:80" in (found.fix.run_line or ""), found.fix
    _fix_makes_it_reachable(engine, found)


def test_httpd_on_every_interface_with_the_right_port_is_ok(engine: Engine, busybox: str) -> None:
    name = unique_name("ok")
    cli(engine, f"docker run -d --name {name} -p 127.0.0.1:{free_port()}:80 {busybox} {HTTPD} -p 0.0.0.0:80")
    found = _cause(engine, name, "ok")
    assert found.expect == "http" and found.evidence.host is not None, found.explain()
    # The learner asks about a port nothing uses: the answer is "use 80", not the line already running.
    asked = diagnose(engine, name, container_port=9999)
    assert (asked.cause, asked.rule) == ("wrong_container_port", "asked_port_unused"), asked.explain()
    assert not asked.fix.commands and asked.fix.run is None and "80" in asked.fix.summary, asked.fix


def test_httpd_published_to_the_wrong_container_port_is_remapped(engine: Engine, busybox: str) -> None:
    name = unique_name("wrongport")
    cli(engine, f"docker run -d --name {name} -p 127.0.0.1:{free_port()}:81 {busybox} {HTTPD} -p 0.0.0.0:80")
    found = _cause(engine, name, "wrong_container_port")
    assert ":80 " in (found.fix.run_line or "") + " ", found.fix
    _fix_makes_it_reachable(engine, found)


def test_httpd_not_published_gets_a_publish_fix(engine: Engine, busybox: str) -> None:
    """No -p and no EXPOSE: the port comes from what listens inside."""
    name = unique_name("unpublished")
    cli(engine, f"docker run -d --name {name} {busybox} {HTTPD} -p 0.0.0.0:80")
    found = _cause(engine, name, "not_published", when=lambda d: bool(d.evidence.sockets))
    assert found.evidence.port_origin == "listening", found.explain()
    _fix_makes_it_reachable(engine, found)


# ------------------------------------------------------------------------------ not HTTP


def test_a_tcp_echo_service_is_ok_and_said_to_be_not_http(engine: Engine, busybox: str) -> None:
    """Inferred: TCP. The published port holds the connection: reachable. Asked for HTTP: not it."""
    name = unique_name("echo")
    cli(
        engine,
        f"docker run -d --name {name} -p 127.0.0.1:{free_port()}:7000 {busybox} {ECHO_SERVER}",
    )
    found = _cause(engine, name, "ok")
    assert found.expect == "tcp" and any("not HTTP" in note for note in found.notes), found.explain()
    assert found.evidence.host is not None and found.evidence.host.kind == "tcp", found.explain()
    as_http = diagnose(engine, name, expect="http")
    assert as_http.cause == "wrong_service", as_http.explain()


def test_a_tcp_service_behind_the_wrong_port_is_not_called_reachable(engine: Engine, busybox: str) -> None:
    """docker-proxy accepts the connect and hangs up: no false ok; the fix remaps, then it is ok."""
    name = unique_name("echo-wrong")
    cli(
        engine,
        f"docker run -d --name {name} -p 127.0.0.1:{free_port()}:7001 {busybox} {ECHO_SERVER}",
    )
    found = _cause(engine, name, "wrong_container_port", expect="tcp")
    _fix_makes_it_reachable(engine, found, expect="tcp")


# ------------------------------------------------------------------------------ IPv6


def test_a_dual_stack_listener_without_ipv6_is_reachable(engine: Engine, busybox: str) -> None:
    """[::]:80 on Docker's default bridge (IPv6 off): probed on 127.0.0.1, ok; [::1] is said in words."""
    name = unique_name("dualstack")
    cli(engine, f"docker run -d --name {name} -p 127.0.0.1:{free_port()}:80 {busybox} {HTTPD} -p 80")
    found = _cause(engine, name, "ok")
    assert found.evidence.listeners == ["[::]:80"], found.explain()
    inside = found.evidence.inside
    assert inside.get("127.0.0.1:80", "").startswith("HTTP/"), inside
    assert "IPv6 is switched off" in inside.get("[::1]:80", "") and "Errno" not in str(inside), inside


def test_ipv6_loopback_with_ipv6_on_is_loopback_only_and_the_fix_keeps_the_sysctl(
    engine: Engine, busybox: str
) -> None:
    name = unique_name("v6loop")
    sysctl = "net.ipv6.conf.all.disable_ipv6=0"
    cli(
        engine,
        f"docker run -d --name {name} -p 127.0.0.1:{free_port()}:80 --sysctl {sysctl} {busybox} "
        f"{HTTPD} -p [::1]:80",
    )
    found = _cause(engine, name, "loopback_only")
    assert found.evidence.listeners == ["[::1]:80"], found.explain()
    line = found.fix.run_line or ""
    assert f"--sysctl {sysctl}" in line and "[::]:80" in line, line
    _fix_makes_it_reachable(engine, found)


def test_an_ipv6_only_listener_is_named(engine: Engine) -> None:
    """A Python server on :: with IPV6_V6ONLY: [::1] answers inside, the forwarded IPv4 is refused."""
    name = unique_name("v6only")
    server = (
        "import http.server as h, socket\n"
        "class S(h.HTTPServer):\n"
        "    address_family = socket.AF_INET6\n"
        "    def server_bind(self):\n"
        "        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)\n"
        "        super().server_bind()\n"
        "S(('::', 8000), h.SimpleHTTPRequestHandler).serve_forever()\n"
    )
    cli(engine, f"docker run -d --name {name} -p 127.0.0.1:{free_port()}:8000 --sysctl "
        f"net.ipv6.conf.all.disable_ipv6=0 {LOCAL_BASE} python3 -c {shlex.quote(server)}")  # fmt: skip
    found = _cause(engine, name, "ipv6_only")
    assert found.rule == "ipv6_only_wildcard" and "IPV6_V6ONLY" in (found.fix.config_change or ""), (
        found.explain()
    )


# ------------------------------------------------------------------------------ state


def test_a_crash_loop_under_restart_always_is_named_and_fixed(engine: Engine, busybox: str) -> None:
    name = unique_name("loop")
    script = (
        'test -n "$GREETING" || { echo "error: GREETING is not set (run with -e GREETING=hello)"; exit 3; }; '
        "exec httpd -f -v -h /www -p 0.0.0.0:80"
    )
    cli(
        engine,
        f"docker run -d --name {name} --restart always -p 127.0.0.1:{free_port()}:80 {busybox} "
        f"sh -c '{script}'",
    )
    assert wait_until(lambda: int(engine.get(name).attrs.get("RestartCount") or 0) >= 1, timeout=20), (
        "it never restarted"
    )
    found = _cause(engine, name, "crash_loop")
    line = found.fix.run_line or ""
    assert "-e GREETING=hello" in line and "--restart always" in line, line
    _fix_makes_it_reachable(engine, found)


def test_a_stopped_container_is_stopped_not_crashed(engine: Engine, busybox: str) -> None:
    """docker stop: SIGTERM (busybox httpd dies of it: 143) -- start it again, nothing else."""
    name = unique_name("stopped")
    cli(engine, f"docker run -d --name {name} -p 127.0.0.1:{free_port()}:80 {busybox} {HTTPD} -p 0.0.0.0:80")
    cli(engine, f"docker stop -t 5 {name}")
    found = _cause(engine, name, "stopped")
    assert found.evidence.exit_code in (137, 143), found.explain()
    assert found.fix.commands == (f"docker start {name}",), found.fix
    _fix_makes_it_reachable(engine, found)


# ------------------------------------------------------------------------------ networks


def test_network_host_ignores_publishing_and_the_fix_publishes(engine: Engine, busybox: str) -> None:
    """--network host -p H:C: the server is on the host's C (on 127.0.0.1 here, never exposed)."""
    name, port = unique_name("hostnet"), free_port()
    cli(
        engine,
        f"docker run -d --name {name} --network host -p {free_port()}:{port} {busybox} "
        f"{HTTPD} -p 127.0.0.1:{port}",
    )
    found = _cause(engine, name, "host_network", when=lambda d: bool(d.evidence.sockets))
    assert found.evidence.listeners == [f"127.0.0.1:{port}"], found.explain()
    line = found.fix.run_line or ""
    assert "--network" not in line and f"0.0.0.0:{port}" in line, line
    _fix_makes_it_reachable(engine, found)


def _reached_by_name(found: Diagnosis) -> bool:
    """The other container gets an answer at this one's address (the server is up)."""
    peer = found.evidence.peer
    return peer is not None and peer.via_name is not None and peer.via_name.accepted


@contextlib.contextmanager
def _network(engine: Engine, *, subnet: bool = False) -> Iterator[tuple[str, str]]:
    """A labelled user-defined network (with a /24 of its own if asked), removed afterwards."""
    labels = {COURSE_LABEL: COURSE, **engine.labels}
    name = f"pbl-foreign-net-{uuid.uuid4().hex[:6]}"
    prefix = ""
    network = None
    for _ in range(20 if subnet else 1):
        prefix = f"172.31.{random.randrange(1, 250)}" if subnet else ""
        ipam = (
            docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=f"{prefix}.0/24")])
            if subnet
            else None
        )
        try:
            network = engine.client.networks.create(name, driver="bridge", labels=labels, ipam=ipam)
            break
        except docker.errors.APIError as exc:
            if "overlap" not in str(exc):
                raise
    assert network is not None, "no free 172.31.N.0/24 for a test network"
    try:
        yield name, prefix
    finally:
        for container in engine.client.containers.list(all=True, filters={"network": name}):
            engine.remove(container)
        network.remove()


def test_a_server_bound_to_its_second_network_address_is_wrong_address(engine: Engine, busybox: str) -> None:
    """Published traffic arrives on the first network's address; the server binds the second's."""
    with _network(engine, subnet=True) as (network, prefix):
        name, address = unique_name("wrongaddr"), f"{prefix}.10"
        cli(
            engine,
            f"docker create --name {name} -p 127.0.0.1:{free_port()}:80 {busybox} {HTTPD} -p {address}:80",
        )
        cli(engine, f"docker network connect --ip {address} {network} {name}")
        cli(engine, f"docker start {name}")
        found = _cause(engine, name, "wrong_address")
        assert f"{address}:80" in found.evidence.listeners, found.explain()
        assert "0.0.0.0:80" in (found.fix.run_line or ""), found.fix
        _fix_makes_it_reachable(engine, found)


def test_a_container_that_calls_another_at_localhost_is_told_its_name(engine: Engine, busybox: str) -> None:
    """Client and server on one user-defined network; the client points at localhost."""
    with _network(engine) as (network, _):
        server, client = unique_name("server"), unique_name("client")
        cli(engine, f"docker run -d --name {server} --network {network} {busybox} {HTTPD} -p 0.0.0.0:80")
        cli(engine, f"docker run -d --name {client} --network {network} -e API=http://localhost:80/ "
            f"{busybox} "
            "sh -c 'while true; do wget -q -O- $API; sleep 5; done'")  # fmt: skip
        found = _cause(
            engine, server, "peer_localhost", when=_reached_by_name, peer=client, container_port=80
        )
        peer = found.evidence.peer
        assert peer is not None and peer.via_name is not None and peer.via_name.accepted, found.explain()
        assert f"{server}:80" in (found.fix.config_change or ""), found.fix
        # The fix, as the client would apply it: the server's name answers from inside the client.
        fetched = cli(engine, f"docker exec {client} /bin/busybox wget -q -O- http://{server}:80/")
        assert "busybox httpd" in fetched.stdout, fetched.stdout


# ------------------------------------------------------------------------------ three ways in


@pytest.mark.parametrize("via", ["procfs", "helper"])
def test_every_way_in_reads_the_same_for_a_tool_less_image(engine: Engine, busybox: str, via: Via) -> None:
    name = unique_name(f"via-{via}")
    cli(engine, f"docker run -d --name {name} -p 127.0.0.1:{free_port()}:80 {busybox}")
    found = _cause(engine, name, "loopback_only", via=via)
    assert found.evidence.look == via, found.explain()
    assert found.evidence.inside.get("127.0.0.1:80", "").startswith("HTTP/"), found.evidence.inside
    left = engine.client.containers.list(all=True, filters={"label": "portbinding.owner=diagnose-helper"})
    assert not [c for c in left if c.labels.get("portbinding.session") == engine.session], (
        "a helper was left behind"
    )


@pytest.mark.parametrize("via", ["exec", "procfs", "helper"])
def test_every_way_in_reads_the_same_for_a_course_image(engine: Engine, via: Via) -> None:
    """The course's python-base has the tools; forced down each path, the evidence is the same."""
    name = unique_name(f"course-{via}")
    cli(engine, f"docker run -d --name {name} -p 127.0.0.1:{free_port()}:8000 {LOCAL_BASE} "
        "python3 -m http.server 8000 --bind 127.0.0.1")  # fmt: skip
    found = _cause(engine, name, "loopback_only", via=via)
    assert found.evidence.look == via and found.evidence.listeners == ["127.0.0.1:8000"], found.explain()
    assert found.evidence.provenance["listeners"] == via, found.evidence.provenance


def test_a_container_with_cat_but_no_python_is_read_by_exec_and_probed_from_outside(
    engine: Engine, busybox: str
) -> None:
    """Like nginx or node images: its own cat lists the sockets, the probe comes from outside."""
    name = unique_name("catonly")
    script = "ln -s /bin/busybox /bin/cat && exec httpd -f -v -h /www -p 127.0.0.1:80"
    cli(engine, f"docker run -d --name {name} -p 127.0.0.1:{free_port()}:80 {busybox} sh -c '{script}'")
    found = _cause(engine, name, "loopback_only", via="exec")
    provenance = found.evidence.provenance
    assert found.evidence.look == "exec" and provenance["listeners"] == "exec", provenance
    assert provenance["inside"] in ("procfs", "helper"), provenance
    assert found.evidence.inside.get("127.0.0.1:80", "").startswith("HTTP/"), found.evidence.inside
    commands = [item.command for item in found.evidence.trail()]
    assert f"docker exec {name} cat /proc/net/tcp /proc/net/tcp6" in commands, commands
    assert any(f"--network container:{name}" in command and "python3" in command for command in commands), (
        commands
    )


@pytest.mark.parametrize("image", ["busybox", "course"])
def test_the_command_shown_for_the_listening_rung_prints_what_the_diagnosis_read(
    engine: Engine, busybox: str, image: str
) -> None:
    """The learner's command, run as shown (docker exec where the image can, a helper where not)."""
    name = unique_name(f"shown-{image}")
    if image == "busybox":
        cli(engine, f"docker run -d --name {name} -p 127.0.0.1:{free_port()}:80 {busybox}")
    else:
        cli(engine, f"docker run -d --name {name} -p 127.0.0.1:{free_port()}:8000 {LOCAL_BASE} "
            "python3 -m http.server 8000 --bind 127.0.0.1")  # fmt: skip
    found = _cause(engine, name, "loopback_only")
    shown = [item.command for item in found.evidence.trail() if item.layer == "listening"]
    assert len(shown) == 1, shown
    assert ("docker exec" in shown[0]) == (image == "course"), shown
    printed = cli(engine, shown[0]).stdout
    assert listeners_from_proc(*split_cat_output(printed)) == list(found.evidence.sockets), printed
