"""portbinding.procnet on this machine's own /proc/net tables and on fixed sample lines."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from portbinding.procnet import (
    LISTEN_COMMAND,
    Listener,
    listeners_from_proc,
    parse_proc_net_tcp,
    reachable_from_outside,
    split_cat_output,
)

PROC_TCP = Path("/proc/net/tcp")
PROC_TCP6 = Path("/proc/net/tcp6")
linux_only = pytest.mark.skipif(not PROC_TCP.exists(), reason="needs Linux /proc/net/tcp")

TCP_HEADER = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
)
TCP6_HEADER = (
    "  sl  local_address                         remote_address                        st tx_queue "
    "rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
)


def entry(number: int, local: str, remote: str, state: str) -> str:
    """One table line as the kernel prints it; only the first four fields matter here."""
    tail = "00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0"
    return f"{number:4d}: {local} {remote} {state} {tail}\n"


V6_ANY = "0" * 32
SAMPLE_TCP = (
    TCP_HEADER
    + entry(0, "0100007F:1F90", "00000000:0000", "0A")  # 127.0.0.1:8080, listening
    + entry(1, "00000000:22B8", "00000000:0000", "0A")  # 0.0.0.0:8888, listening
    + entry(2, "0100007F:1F90", "0100007F:C350", "01")  # an established connection, not a listener
    + entry(3, "0202A8C0:0050", "00000000:0000", "0A")  # 192.168.2.2:80, listening
)
SAMPLE_TCP6 = (
    TCP6_HEADER
    + entry(0, "00000000000000000000000001000000:22B8", f"{V6_ANY}:0000", "0A")  # [::1]:8888
    + entry(1, f"{V6_ANY}:1F90", f"{V6_ANY}:0000", "0A")  # [::]:8080
    + entry(2, "0000000000000000FFFF00000100007F:0016", f"{V6_ANY}:0000", "0A")  # [::ffff:127.0.0.1]:22
    + entry(3, "000000FD000000000000000001000000:0050", f"{V6_ANY}:0000", "0A")  # [fd00::1]:80
    + entry(4, "00000000000000000000000001000000:22B8", "00000000000000000000000001000000:D431", "06")
)


# ---------------------------------------------------------------------------------------------
# Real data: this process's own listening sockets


def listen_on(family: socket.AddressFamily, host: str, opened: list[socket.socket]) -> int:
    sock = socket.socket(family, socket.SOCK_STREAM)
    opened.append(sock)
    if family == socket.AF_INET6:
        # Keep the "::" socket IPv6-only so it shows up in tcp6 alone, whatever the sysctl says.
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((host, 0))
    sock.listen(4)
    port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def opened_sockets() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


def read_proc(path: Path) -> str:
    return path.read_text() if path.exists() else ""


@linux_only
def test_finds_own_ipv4_listeners(opened_sockets: list[socket.socket]) -> None:
    loopback_port = listen_on(socket.AF_INET, "127.0.0.1", opened_sockets)
    wildcard_port = listen_on(socket.AF_INET, "0.0.0.0", opened_sockets)

    found = parse_proc_net_tcp(read_proc(PROC_TCP), family="ipv4")

    loopback = Listener("127.0.0.1", loopback_port, "ipv4")
    wildcard = Listener("0.0.0.0", wildcard_port, "ipv4")
    assert loopback in found
    assert wildcard in found
    assert loopback.is_loopback
    assert not loopback.is_wildcard
    assert not reachable_from_outside(loopback)
    assert wildcard.is_wildcard
    assert not wildcard.is_loopback
    assert reachable_from_outside(wildcard)


@linux_only
def test_established_connections_are_not_listeners(opened_sockets: list[socket.socket]) -> None:
    port = listen_on(socket.AF_INET, "127.0.0.1", opened_sockets)
    client = socket.create_connection(("127.0.0.1", port), timeout=5.0)
    opened_sockets.append(client)
    client_port = client.getsockname()[1]

    ports = {listener.port for listener in parse_proc_net_tcp(read_proc(PROC_TCP), family="ipv4")}

    assert port in ports
    assert client_port not in ports


@linux_only
@pytest.mark.skipif(not socket.has_ipv6, reason="this Python has no IPv6 support")
def test_finds_own_ipv6_listeners(opened_sockets: list[socket.socket]) -> None:
    loopback_port = listen_on(socket.AF_INET6, "::1", opened_sockets)
    wildcard_port = listen_on(socket.AF_INET6, "::", opened_sockets)

    found = parse_proc_net_tcp(read_proc(PROC_TCP6), family="ipv6")

    loopback = Listener("::1", loopback_port, "ipv6")
    wildcard = Listener("::", wildcard_port, "ipv6")
    assert loopback in found
    assert wildcard in found
    assert loopback.is_loopback
    assert not reachable_from_outside(loopback)
    assert wildcard.is_wildcard
    assert reachable_from_outside(wildcard)


@linux_only
def test_listen_command_output_round_trip(opened_sockets: list[socket.socket]) -> None:
    port = listen_on(socket.AF_INET, "127.0.0.1", opened_sockets)
    # check=False: with IPv6 disabled, cat prints tcp and fails on the missing tcp6.
    completed = subprocess.run(LISTEN_COMMAND, capture_output=True, text=True, timeout=10, check=False)

    tcp, tcp6 = split_cat_output(completed.stdout)

    assert tcp.lstrip().startswith("sl")
    assert "remote_address" not in tcp
    assert (tcp6 == "") == (not PROC_TCP6.exists())
    assert Listener("127.0.0.1", port, "ipv4") in listeners_from_proc(tcp, tcp6)


# ---------------------------------------------------------------------------------------------
# Fixed samples: byte order, state filter, splitting


def test_ipv4_sample_decoding() -> None:
    assert parse_proc_net_tcp(SAMPLE_TCP, family="ipv4") == [
        Listener("127.0.0.1", 8080, "ipv4"),
        Listener("0.0.0.0", 8888, "ipv4"),
        Listener("192.168.2.2", 80, "ipv4"),
    ]


def test_ipv6_sample_decoding() -> None:
    found = parse_proc_net_tcp(SAMPLE_TCP6, family="ipv6")
    assert found == [
        Listener("::1", 8888, "ipv6"),
        Listener("::", 8080, "ipv6"),
        Listener("::ffff:127.0.0.1", 22, "ipv6"),
        Listener("fd00::1", 80, "ipv6"),
    ]
    assert [listener.is_loopback for listener in found] == [True, False, True, False]
    assert [listener.is_wildcard for listener in found] == [False, True, False, False]


@pytest.mark.parametrize(
    ("address", "family", "loopback", "wildcard"),
    [
        ("127.1.2.3", "ipv4", True, False),
        ("10.0.0.5", "ipv4", False, False),
        ("::ffff:0.0.0.0", "ipv6", False, True),
        ("::ffff:10.0.0.5", "ipv6", False, False),
    ],
)
def test_flags(address: str, family: str, loopback: bool, wildcard: bool) -> None:
    listener = Listener(address, 1, "ipv4" if family == "ipv4" else "ipv6")
    assert listener.is_loopback is loopback
    assert listener.is_wildcard is wildcard
    assert reachable_from_outside(listener) is not loopback


def test_listeners_from_proc_sorts_and_deduplicates() -> None:
    duplicated = SAMPLE_TCP + entry(9, "0100007F:1F90", "00000000:0000", "0A")  # SO_REUSEPORT twin
    found = listeners_from_proc(duplicated, SAMPLE_TCP6)
    assert found == [
        Listener("::ffff:127.0.0.1", 22, "ipv6"),
        Listener("192.168.2.2", 80, "ipv4"),
        Listener("fd00::1", 80, "ipv6"),
        Listener("127.0.0.1", 8080, "ipv4"),
        Listener("::", 8080, "ipv6"),
        Listener("0.0.0.0", 8888, "ipv4"),
        Listener("::1", 8888, "ipv6"),
    ]


def test_listeners_from_proc_without_tcp6() -> None:
    assert listeners_from_proc(SAMPLE_TCP, "") == [
        Listener("192.168.2.2", 80, "ipv4"),
        Listener("127.0.0.1", 8080, "ipv4"),
        Listener("0.0.0.0", 8888, "ipv4"),
    ]


def test_split_cat_output_both_tables() -> None:
    assert split_cat_output(SAMPLE_TCP + SAMPLE_TCP6) == (SAMPLE_TCP, SAMPLE_TCP6)


def test_split_cat_output_tcp6_missing() -> None:
    assert split_cat_output(SAMPLE_TCP) == (SAMPLE_TCP, "")


def test_split_cat_output_ignores_leading_noise_and_empty_input() -> None:
    assert split_cat_output("cat: something odd\n" + SAMPLE_TCP) == (SAMPLE_TCP, "")
    assert split_cat_output("") == ("", "")


def test_wrong_address_width_is_rejected() -> None:
    with pytest.raises(ValueError, match="32-hex-digit ipv6"):
        parse_proc_net_tcp(SAMPLE_TCP, family="ipv6")


def test_str_is_host_colon_port() -> None:
    assert str(Listener("::1", 8888, "ipv6")) == "[::1]:8888"
    assert str(Listener("127.0.0.1", 8888, "ipv4")) == "127.0.0.1:8888"
