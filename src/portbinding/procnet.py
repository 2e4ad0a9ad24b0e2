"""Which addresses does the server inside the container listen on?

The classic cause of "the container runs but I can't reach it" is a server bound to
127.0.0.1 inside the container: docker-proxy reaches the container through its own network
interface, never its loopback. Minimal images often lack ``ss`` and ``netstat``, but every Linux
container has ``/proc/net/tcp`` and (unless IPv6 is disabled) ``/proc/net/tcp6``, so the course
reads those with ``cat`` (see :data:`LISTEN_COMMAND`) and parses them here.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal, TypeAlias

Family: TypeAlias = Literal["ipv4", "ipv6"]

LISTEN_COMMAND: tuple[str, ...] = ("cat", "/proc/net/tcp", "/proc/net/tcp6")
"""A shell-free argv printing both tables in one exec; split its output with :func:`split_cat_output`.

When IPv6 is disabled ``/proc/net/tcp6`` is missing: ``cat`` then still prints the IPv4 table
but exits with status 1, so callers should judge the output, not the exit status.
"""

_LISTEN_STATE = "0A"  # TCP_LISTEN in the kernel's enum, printed as two hex digits
# Docker's embedded DNS server listens here in every container on a user-defined network (the
# grader's, for one): its socket is the engine's, never the app's.
DOCKER_DNS = "127.0.0.11"
_ENTRY = re.compile(r"^\s*\d+:\s+([0-9A-Fa-f]+):([0-9A-Fa-f]{4})\s+\S+\s+([0-9A-Fa-f]{2})\b")


@dataclass(frozen=True)
class Listener:
    """One listening TCP socket: the address it is bound to, its port and address family."""

    address: str
    port: int
    family: Family

    @property
    def is_loopback(self) -> bool:
        """True for 127.0.0.0/8, ::1 and IPv4-mapped ::ffff:127.x: reachable from inside only."""
        ip = ipaddress.ip_address(self.address)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            # Python 3.11's IPv6Address.is_loopback ignores mapped IPv4 addresses.
            return ip.ipv4_mapped.is_loopback
        return ip.is_loopback

    @property
    def is_wildcard(self) -> bool:
        """True for 0.0.0.0 and ``::``: the socket accepts connections on every interface."""
        ip = ipaddress.ip_address(self.address)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            return ip.ipv4_mapped.is_unspecified
        return ip.is_unspecified

    def __str__(self) -> str:
        host = f"[{self.address}]" if self.family == "ipv6" else self.address
        return f"{host}:{self.port}"


def parse_proc_net_tcp(text: str, *, family: Family) -> list[Listener]:
    """The LISTEN sockets in one ``/proc/net/tcp`` (``family="ipv4"``) or ``tcp6`` table, in file order.

    The kernel prints each 32-bit word of an address in host byte order, so on the
    little-endian machines Docker runs on (x86-64, arm64) ``0100007F:1F90`` is 127.0.0.1:8080
    and an IPv6 address is four such words. The port is a plain big-endian hex number.
    Header lines and lines that are not table entries are skipped.

    Raises:
        ValueError: an entry's address has the wrong length for ``family``.
    """
    listeners: list[Listener] = []
    for line in text.splitlines():
        match = _ENTRY.match(line)
        if match is None:
            continue  # the header, a blank line, or stray output from the command
        address_hex, port_hex, state = match.groups()
        if state.upper() != _LISTEN_STATE:
            continue
        address = _decode_address(address_hex, family, line)
        listeners.append(Listener(address=address, port=int(port_hex, 16), family=family))
    return listeners


def listeners_from_proc(tcp: str, tcp6: str) -> list[Listener]:
    """Every listening socket in both tables, deduplicated and sorted by port, family, address.

    Pass ``""`` for ``tcp6`` when the file does not exist (IPv6 disabled in the container).
    """
    found = set(parse_proc_net_tcp(tcp, family="ipv4")) | set(parse_proc_net_tcp(tcp6, family="ipv6"))
    found = {item for item in found if item.address != DOCKER_DNS}
    return sorted(found, key=lambda item: (item.port, item.family, ipaddress.ip_address(item.address)))


def reachable_from_outside(listener: Listener) -> bool:
    """Whether ``listener`` could be reached from outside the container (e.g. via ``-p``) at all.

    Loopback addresses never can: docker-proxy and the published port arrive over the container's
    network interface. Any other address might -- whether forwarded traffic really arrives on it
    (one specific address of several, IPv6 only) is for the diagnosis to tell from the evidence
    (``portbinding.diagnose.classify``: ``wrong_address``, ``ipv6_only``).
    """
    return not listener.is_loopback


def split_cat_output(text: str) -> tuple[str, str]:
    """Split the output of :data:`LISTEN_COMMAND` into the ``(tcp, tcp6)`` tables.

    Each table starts with a header line whose first word is ``sl``. Which table is which is
    read from the header (tcp6 says ``remote_address``, tcp says ``rem_address``), so a missing
    tcp6 file simply gives ``""`` for it. Text before the first header is ignored.
    """
    tables: dict[Family, list[str]] = {"ipv4": [], "ipv6": []}
    current: list[str] | None = None
    for line in text.splitlines(keepends=True):
        words = line.split()
        if words and words[0] == "sl":
            current = tables["ipv6" if "remote_address" in words else "ipv4"]
        if current is not None:
            current.append(line)
    return "".join(tables["ipv4"]), "".join(tables["ipv6"])


def _decode_address(address_hex: str, family: Family, line: str) -> str:
    width = 8 if family == "ipv4" else 32
    if len(address_hex) != width:
        raise ValueError(f"expected a {width}-hex-digit {family} address in /proc/net line {line.strip()!r}")
    # Reverse the bytes of each 32-bit word to undo the little-endian printing.
    packed = b"".join(bytes.fromhex(address_hex[i : i + 8])[::-1] for i in range(0, width, 8))
    ip = ipaddress.ip_address(packed)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        # Spell mapped addresses the way ss and newer Pythons do (::ffff:127.0.0.1), not
        # Python 3.11's ::ffff:7f00:1, so learners recognise the IPv4 address inside.
        return f"::ffff:{ip.ipv4_mapped}"
    return str(ip)
