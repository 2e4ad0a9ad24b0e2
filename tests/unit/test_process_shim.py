"""The process engine's socket shim: a process gets a network of its own, as far as binding goes.

Each test runs a real Python process with the shim loaded (as the process engine starts them)
and real sockets on this machine's loopback network.
"""

from __future__ import annotations

import errno
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from portbinding.engine import free_port
from portbinding.process.container import SHIM_DIR
from portbinding.process.netview import ContainerNet

TRY_BIND = """
s = socket.socket()
try:
    s.bind(({host!r}, {port}))
except OSError as e:
    out['errno'] = e.errno
"""
INDEX = 201  # a container number no running process engine is likely to hand out during tests


@pytest.fixture
def net(tmp_path: Path) -> ContainerNet:
    return ContainerNet(INDEX, tmp_path / "ports.json")


def inside(net: ContainerNet, code: str) -> dict[str, object]:
    """Run ``code`` in a process of the container; it sets ``out`` (a dict), printed as JSON."""
    program = "import json, socket\nout = {}\n" + code + "\nprint(json.dumps(out))"
    done = subprocess.run(
        [sys.executable, "-c", program],
        env={"PYTHONPATH": str(SHIM_DIR), **net.env()},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.fixture
def host_wildcard() -> Iterator[int]:
    """A host server on 0.0.0.0:P, as mybinder.org's own Jupyter holds 8888."""
    with socket.socket() as server:
        server.bind(("0.0.0.0", free_port()))
        server.listen()
        yield int(server.getsockname()[1])


def test_every_address_means_the_containers_eth0_and_loopback_its_own(net: ContainerNet) -> None:
    out = inside(
        net,
        "a = socket.socket(); a.bind(('0.0.0.0', 0)); out['any'] = a.getsockname()[0]\n"
        "b = socket.socket(); b.bind(('127.0.0.1', 0)); out['lo'] = b.getsockname()[0]\n"
        "import _socket\nout['real_any'] = _socket.socket.getsockname(a)[0]\n"
        "out['real_lo'] = _socket.socket.getsockname(b)[0]",
    )
    assert out == {"any": "0.0.0.0", "lo": "127.0.0.1", "real_any": net.eth, "real_lo": net.lo}


def test_an_address_the_container_does_not_have_cannot_be_bound(net: ContainerNet) -> None:
    out = inside(
        net,
        TRY_BIND.format(host="192.0.2.7", port=0),
    )
    assert out["errno"] == errno.EADDRNOTAVAIL


def test_loopback_and_every_address_share_one_port_space(net: ContainerNet) -> None:
    port = free_port()
    out = inside(
        net,
        f"a = socket.socket(); a.bind(('0.0.0.0', {port})); a.listen()\n"
        + TRY_BIND.format(host="127.0.0.1", port=port),
    )
    assert out["errno"] == errno.EADDRINUSE


def test_a_port_the_host_holds_everywhere_is_still_free_inside(net: ContainerNet, host_wildcard: int) -> None:
    """The server sees the port it asked for; the engine finds where it really listens."""
    out = inside(
        net,
        f"a = socket.socket(); a.bind(('0.0.0.0', {host_wildcard})); a.listen()\n"
        "out['seen'] = a.getsockname()[1]\n"
        "from portbinding.process.netview import ContainerNet\n"
        "import os, pathlib\n"
        f"n = ContainerNet({INDEX}, pathlib.Path(os.environ['PORTBINDING_PROCESS_PORTS']))\n"
        f"out['listens'] = n.listens_on_eth({host_wildcard})\n"
        f"out['table'] = n.proc_net_tcp()",
    )
    assert out["seen"] == host_wildcard
    assert out["listens"] is True
    assert f"00000000:{host_wildcard:04X}" in str(out["table"]), "the container's table shows 0.0.0.0:P"
    assert net.real_eth_port(host_wildcard) != host_wildcard, "the real socket had to move"


def test_connecting_to_loopback_inside_never_reaches_the_hosts_own_server(
    net: ContainerNet, host_wildcard: int
) -> None:
    out = inside(
        net,
        f"s = socket.socket()\nout['code'] = s.connect_ex(('127.0.0.1', {host_wildcard}))",
    )
    assert out["code"] == errno.ECONNREFUSED


def test_connecting_to_loopback_inside_reaches_the_containers_server(net: ContainerNet) -> None:
    port = free_port()
    out = inside(
        net,
        f"a = socket.socket(); a.bind(('127.0.0.1', {port})); a.listen()\n"
        f"c = socket.create_connection(('127.0.0.1', {port}), timeout=5)\n"
        "peer, _ = a.accept()\n"
        "out['reached'] = peer.getsockname()[0]",
    )
    assert out["reached"] == "127.0.0.1"
