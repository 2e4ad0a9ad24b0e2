"""Gives a process of the process engine a network of its own, as far as port binding goes.

Loaded by Python at start-up (it sits first on PYTHONPATH) in every process of a process-engine
container, and in every command run inside one. It must use the standard library only.

A real container has its own network namespace: ``0.0.0.0`` there means its loopback and its
eth0, ``127.0.0.1`` only its loopback, and port 8888 inside is free even when the host uses
8888. Here every "container" gets two loopback addresses of the host instead (from the
environment): ``PORTBINDING_PROCESS_ETH`` plays eth0 -- the only address the publisher
forwards to -- and ``PORTBINDING_PROCESS_LO`` plays the container's own 127.0.0.1. Binds and
connects are moved onto them:

* bind ``0.0.0.0``/``""`` -> ETH;  bind ``127.0.0.1``/``localhost`` -> LO;
  any other address -> "Cannot assign requested address", as in a container without it;
* one port, one owner, inside the container: LO and ETH share the container's port space;
* when the host itself holds the port on every address (mybinder.org's own Jupyter on
  0.0.0.0:8888), the socket gets a kernel-chosen port instead, recorded in the container's port
  map (PORTBINDING_PROCESS_PORTS) so the publisher and the engine still find it as 8888;
* connect to ``127.0.0.1:P`` -> whichever of the container's addresses listens on P, else
  "connection refused" -- never the host's own server on P.

Python's sockets only: that covers every server the course runs (all Python) and the probes
run inside; a compiled server would need LD_PRELOAD, which the course does not need.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import weakref
from typing import Any

ETH = os.environ.get("PORTBINDING_PROCESS_ETH", "")
LO = os.environ.get("PORTBINDING_PROCESS_LO", "")
PORTS_FILE = os.environ.get("PORTBINDING_PROCESS_PORTS", "")

_bind = socket.socket.bind
_connect = socket.socket.connect
_getsockname = socket.socket.getsockname
_requested: weakref.WeakKeyDictionary[socket.socket, tuple[str, int]] = weakref.WeakKeyDictionary()


def _hex(address: str, port: int) -> str:
    packed = socket.inet_aton(address)
    return f"{int.from_bytes(packed, 'little'):08X}:{port:04X}"


def listening(address: str, port: int) -> bool:
    """Whether a socket listens on exactly ``address:port`` (read from the kernel's table).

    Public, with read_port_map: the engine (netview) asks the same questions from outside.
    """
    wanted = _hex(address, port)
    try:
        with open("/proc/net/tcp", encoding="ascii") as table:
            return any(f" {wanted} 00000000:0000 0A " in line for line in table)
    except OSError:
        return False


def read_port_map(path: str) -> dict[str, int]:
    """``{"eth:8888": 41234}``: ports moved because the host held them on every address."""
    try:
        with open(path, encoding="utf-8") as handle:
            return {str(k): int(v) for k, v in json.load(handle).items()}
    except (OSError, ValueError):
        return {}


def _port_map() -> dict[str, int]:
    return read_port_map(PORTS_FILE)


def _record(kind: str, port: int, real: int) -> None:
    ports = _port_map()
    ports[f"{kind}:{port}"] = real
    temporary = f"{PORTS_FILE}.{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(ports, handle)
    os.replace(temporary, PORTS_FILE)  # readers never see half a file


def _real_port(kind: str, port: int) -> int:
    return _port_map().get(f"{kind}:{port}", port)


def _holds(kind: str, port: int) -> bool:
    address = ETH if kind == "eth" else LO
    return listening(address, _real_port(kind, port))


def _is_loopback(host: str) -> bool:
    return host == "localhost" or host.startswith("127.")


def _kind_for_bind(host: str) -> str:
    if host in ("", "0.0.0.0", ETH):
        return "eth"
    if _is_loopback(host) or host == LO:
        return "lo"
    raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")


def bind(self: socket.socket, address: Any) -> None:
    if self.family != socket.AF_INET or not isinstance(address, tuple):
        return _bind(self, address)
    host, port = str(address[0]), int(address[1])
    kind = _kind_for_bind(host)
    real_host = ETH if kind == "eth" else LO
    other = "lo" if kind == "eth" else "eth"
    if port and _holds(other, port):  # 0.0.0.0:P and 127.0.0.1:P clash inside one container
        raise OSError(errno.EADDRINUSE, "Address already in use")
    try:
        _bind(self, (real_host, port))
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE or not port or _holds(kind, port):
            raise
        _bind(self, (real_host, 0))  # the host holds P on every address; P stays free in here
        _record(kind, port, int(_getsockname(self)[1]))
    _requested[self] = ("0.0.0.0" if kind == "eth" and host in ("", "0.0.0.0") else host, port)


def getsockname(self: socket.socket) -> Any:
    name = _getsockname(self)
    if self.family != socket.AF_INET or name[0] not in (ETH, LO):
        return name
    requested = _requested.get(self)
    if requested is not None:
        host, port = requested
        return ("127.0.0.1" if host == "localhost" else host, port or name[1])
    kind = "eth" if name[0] == ETH else "lo"
    reverse = {real: int(key.split(":")[1]) for key, real in _port_map().items() if key.startswith(kind)}
    host = "127.0.0.1" if name[0] == LO else name[0]  # eth0's address is the container's IP
    return (host, reverse.get(name[1], name[1]))


def _target(address: Any) -> Any:
    """Where a connect from inside the container really goes; None means refused."""
    host, port = str(address[0]), int(address[1])
    if _is_loopback(host):
        for kind, real_host in (("lo", LO), ("eth", ETH)):
            if _holds(kind, port):
                return (real_host, _real_port(kind, port))
        return None
    if host == ETH:
        return (ETH, _real_port("eth", port)) if _holds("eth", port) else None
    return address


def connect(self: socket.socket, address: Any) -> None:
    if self.family == socket.AF_INET6 and isinstance(address, tuple) and address[0] == "::1":
        raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    if self.family != socket.AF_INET or not isinstance(address, tuple):
        return _connect(self, address)
    target = _target(address)
    if target is None:
        raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    return _connect(self, target)


def connect_ex(self: socket.socket, address: Any) -> int:
    try:
        connect(self, address)
    except OSError as exc:
        return exc.errno or errno.EIO
    return 0


if ETH and LO:
    socket.socket.bind = bind  # type: ignore[method-assign,assignment]
    socket.socket.connect = connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]
    socket.socket.getsockname = getsockname  # type: ignore[method-assign,assignment]
    # Servers that bind "every address" try IPv6 too when the host has it (tornado does); a
    # container's IPv6 is not modelled, so they bind IPv4 only, where the shim applies.
    socket.has_ipv6 = False
