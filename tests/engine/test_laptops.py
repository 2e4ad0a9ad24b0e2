"""The Linux row of lesson 07's laptop-engines table, measured on this machine's Docker Engine.

Each claim of the row marked *measured* (portbinding.laptops.ROW["linux"]) is checked here:
the host's own address refuses an app bound to 127.0.0.1 inside (DNAT, no proxy to accept
first), the container's own address is routable from the host, and host.docker.internal --
given with ``--add-host=host.docker.internal:host-gateway`` -- reaches a host service on the
bridge gateway but not one bound to the host's 127.0.0.1.
"""

from __future__ import annotations

import socket

import pytest

from portbinding.command import parse_run
from portbinding.engine import Engine
from portbinding.laptops import ROW, laptop_row
from portbinding.probe import probe_http, wait_until
from tests.support.local_server import LocalServer, http_reply

pytestmark = pytest.mark.engines(
    "docker", reason="the Linux row is Docker Engine's (docker-proxy, DNAT, a bridge)"
)

API = "portbinding/scoring-api:1.0"


def _own_address() -> str:
    """This machine's address on its default route (no packet is sent: UDP connect only picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere, only used to choose a source
        return str(probe.getsockname()[0])


def test_this_machine_is_the_linux_row(engine: Engine) -> None:
    placed = laptop_row(engine)
    assert placed.row is ROW["linux"], placed


def test_the_hosts_own_address_refuses_a_loopback_bound_app_and_the_container_ip_routes(
    engine: Engine,
) -> None:
    """Published on this machine's own address: refused (curl 7), not reset; the bridge IP answers."""
    own = _own_address()
    broken = engine.run(parse_run(f"docker run -d -p {own}::8000 -e BIND_HOST=127.0.0.1 {API}"))
    fine = engine.run(parse_run(f"docker run -d {API}"))
    port = engine.host_port(broken, 8000)
    assert port is not None, "no host port published"
    assert wait_until(lambda: "listening" in engine.logs(broken), timeout=20), engine.logs(broken)
    seen = probe_http(f"http://{own}:{port}/health", timeout=3)
    assert seen.outcome == "refused", f"{own}:{port}: {seen.outcome} ({seen.detail}); the row says refused"
    engine.state(fine)
    address = fine.attrs["NetworkSettings"]["IPAddress"]
    assert wait_until(lambda: probe_http(f"http://{address}:8000/health").http_status == 200, timeout=20), (
        f"the container's own address {address} did not answer from this machine"
    )


def test_host_docker_internal_reaches_the_bridge_gateway_not_the_hosts_loopback(engine: Engine) -> None:
    """A host service on the gateway address answers host.docker.internal; one on 127.0.0.1 refuses."""
    probe = engine.run(
        parse_run(
            f"docker run -d --add-host=host.docker.internal:host-gateway {API}",
            networks=True,
        )
    )
    engine.state(probe)
    gateway = probe.attrs["NetworkSettings"]["Gateway"]
    reply = http_reply(200, "OK", b'{"from": "the host"}')
    on_gateway, on_loopback = LocalServer(reply, host=gateway), LocalServer(reply, host="127.0.0.1")
    on_gateway.start()
    on_loopback.start()
    try:
        code = (
            "import socket, sys\n"
            "for port in sys.argv[1:]:\n"
            "    try:\n"
            "        socket.create_connection(('host.docker.internal', int(port)), 3).close()\n"
            "        print(port, 'ok')\n"
            "    except OSError as e: print(port, type(e).__name__)"
        )
        result = engine.exec(probe, ["python3", "-c", code, str(on_gateway.port), str(on_loopback.port)])
        said = dict(line.split(" ", 1) for line in result.output.strip().splitlines())
        assert said.get(str(on_gateway.port)) == "ok", f"gateway {gateway}: {result.output}"
        assert said.get(str(on_loopback.port)) == "ConnectionRefusedError", result.output
    finally:
        on_gateway.close()
        on_loopback.close()
