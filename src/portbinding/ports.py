"""The ``-p/--publish`` syntax, parsed exactly as the Docker CLI parses it.

``parse_publish`` follows the CLI's own code path: the long form
``target=80,published=8080`` is first rewritten to ``8080:80/tcp``, then the value is
split as ``[ip:][hostPort:]containerPort[/proto]`` the way
github.com/docker/go-connections/nat (v0.5, vendored by Docker CLI 28) does it.
Quirks are kept on purpose, because a learner's line must mean here what it means to
``docker run``: ``80-81-99`` is the range 80-81, ``80/tcp/x`` is ``80/tcp``, port 0 is
accepted, and ``::80`` publishes container port 80 on any address and any free port.
tests/engine/test_ports_oracle.py checks all of this against the real CLI.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from portbinding.dockerjson import PortBinding
from portbinding.errors import PortSpecError

PROTOCOLS: tuple[str, ...] = ("tcp", "udp", "sctp")
MAX_PORT = 65535

# str.isdigit() and int() accept non-ASCII digits ("٨٠") and underscores; Go's ParseUint does not.
_DIGITS = re.compile(r"[0-9]+")
# Go's net.SplitHostPort accepts exactly one pair of brackets around a host with no brackets inside.
_BRACKETED = re.compile(r"\[([^\[\]]*)\]")

_FORM_HINT = (
    "Write -p HOST:CONTAINER, e.g. -p 8888:8888 "
    "(put an IP address in front to choose the host interface: -p 127.0.0.1:8888:8888)."
)


@dataclass(frozen=True)
class PortMapping:
    """One container port published on the host, as Docker records it in ``HostConfig.PortBindings``.

    A ``-p`` value with a container port range gives one ``PortMapping`` per container port.
    """

    container_port: int
    protocol: str
    # "" when the spec names none, as Docker records it; IPv6 addresses are kept without brackets.
    host_ip: str
    # None when the host port is left empty: Docker then picks any free port.
    host_port: int | None
    # Only for a host range published to ONE container port ("8000-8010:80"): Docker picks a free
    # port from host_port..host_port_end.
    host_port_end: int | None = None

    def __post_init__(self) -> None:
        _check_number(self.container_port, what="container port")
        if self.protocol not in PROTOCOLS:
            raise PortSpecError(
                f"'{self.protocol}' is not a protocol Docker can publish: expected one of tcp, udp, sctp.",
                hint="Leave the protocol out for tcp, or write e.g. 8888:8888/udp.",
            )
        if self.host_ip and not _is_ip(self.host_ip):
            raise PortSpecError(
                f"'{self.host_ip}' is not an IP address (write IPv6 addresses without brackets here).",
                hint="Use an address such as 127.0.0.1, 0.0.0.0 or ::1, or '' for every address.",
            )
        if self.host_port is not None:
            _check_number(self.host_port, what="host port")
        if self.host_port_end is not None:
            _check_number(self.host_port_end, what="end of the host port range")
            if self.host_port is None or self.host_port_end <= self.host_port:
                raise PortSpecError(
                    f"A host port range must run upwards from host_port, but it is "
                    f"{self.host_port}-{self.host_port_end}.",
                    hint="Give host_port the first port and host_port_end a larger last one, e.g. 8000-8010.",
                )

    @property
    def key(self) -> str:
        """Docker's name for the container side, e.g. ``"8888/tcp"``."""
        return f"{self.container_port}/{self.protocol}"

    @property
    def host_port_text(self) -> str:
        """The host port as Docker records it: ``""`` for any free port, ``"8000-8010"`` for a range."""
        if self.host_port is None:
            return ""
        if self.host_port_end is not None:
            return f"{self.host_port}-{self.host_port_end}"
        return str(self.host_port)

    def to_spec(self) -> str:
        """The canonical ``-p`` value for this mapping; ``parse_publish`` reads it back unchanged."""
        container = str(self.container_port) if self.protocol == "tcp" else self.key
        if self.host_ip:
            # A bare IPv6 address also parses, but only brackets make the host part readable.
            return f"{bracket_host(self.host_ip)}:{self.host_port_text}:{container}"
        if self.host_port is not None:
            return f"{self.host_port_text}:{container}"
        return container

    def with_container_port(self, port: int) -> PortMapping:
        """The same host side, forwarding to container port ``port`` (the fix for a wrong one)."""
        return dataclasses.replace(self, container_port=port)

    def with_host_port(self, port: int | None, *, host_ip: str | None = None) -> PortMapping:
        """The same container side on host port ``port`` (a range becomes that one port);
        ``host_ip``, when given, replaces the address too."""
        return dataclasses.replace(
            self, host_port=port, host_port_end=None, host_ip=self.host_ip if host_ip is None else host_ip
        )


def bracket_host(host: str) -> str:
    """``host`` as it goes before ``:port`` in a URL or a ``-p`` value: IPv6 addresses in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def validate_port(value: int, *, what: str) -> int:
    """Return ``value`` if it is a usable port (1-65535); otherwise raise PortSpecError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PORT:
        raise PortSpecError(
            f"The {what} must be a port number from 1 to {MAX_PORT}, but it is {value!r}.",
            hint="Pick a port such as 8888.",
        )
    return value


def parse_publish(spec: str) -> list[PortMapping]:
    """Parse one ``-p/--publish`` value into the mappings ``docker run`` would create.

    Raises PortSpecError, with a message for the learner, for every value the Docker CLI rejects.
    """
    shown = f"-p {shlex.quote(spec)}"
    short = _long_form_to_short(spec, shown=shown) if "=" in spec else spec
    ip, host, container = _split_parts(short)
    protocol, container = _split_proto_port(container)
    if not container:
        what = "a target port (target=CONTAINER_PORT)" if "=" in spec else "a container port"
        raise PortSpecError(
            f"{shown} names no container port: expected {what}, the port the app listens on "
            "inside the container.",
            hint=_FORM_HINT,
        )
    if protocol.lower() not in PROTOCOLS:
        raise PortSpecError(
            f"'{protocol}' is not a protocol Docker can publish: expected tcp, udp or sctp (in {shown}).",
            hint="Leave the protocol out for tcp (-p 8888:8888), or add it after a slash: -p 5353:53/udp.",
        )
    protocol = protocol.lower()
    host_ip = _parse_host_ip(ip, shown=shown)
    first, last = _parse_range(container, shown=shown)
    host_first: int | None = None
    host_last: int | None = None
    if host:
        if _is_ip(host) or host.startswith("["):
            raise PortSpecError(
                f"{shown} has an IP address ('{host}') where the host port belongs.",
                hint=f"Give a host port after the address, e.g. -p {host}:8888:{container}, or leave it "
                f"empty for any free port: -p {host}::{container}.",
            )
        host_first, host_last = _parse_range(host, shown=shown)
        # A host range may feed ONE container port (Docker picks a free port in it); otherwise the
        # two ranges are paired port by port and must be the same length.
        if last != first and host_last - host_first != last - first:
            raise PortSpecError(
                f"{shown} pairs host ports {host} ({_count(host_first, host_last)}) with container "
                f"ports {container} ({_count(first, last)}): the two ranges must be the same length.",
                hint="Make both ranges equally long, e.g. -p 8000-8002:8000-8002.",
            )
    mappings: list[PortMapping] = []
    for offset in range(last - first + 1):
        host_port = None if host_first is None else host_first + offset
        host_port_end = host_last if first == last and host_first != host_last else None
        mappings.append(PortMapping(first + offset, protocol, host_ip, host_port, host_port_end))
    return mappings


def to_docker_ports(mappings: Iterable[PortMapping]) -> dict[str, list[tuple[str, str]]]:
    """Shape mappings as the Docker SDK's ``ports=`` (HostConfig.PortBindings) expects them.

    ``{"8888/tcp": [("127.0.0.1", "8888")]}``; the host port is ``""`` for any free port.
    """
    bindings: dict[str, list[tuple[str, str]]] = {}
    for mapping in mappings:
        bindings.setdefault(mapping.key, []).append((mapping.host_ip, mapping.host_port_text))
    return bindings


def from_bindings(bindings: Mapping[str, Sequence[PortBinding] | None]) -> list[PortMapping]:
    """Read ``HostConfig.PortBindings`` back into mappings: the inverse of :func:`to_docker_ports`.

    A host port range (``"8000-8010"``, what ``-p 8000-8010:80`` records) stays a range, and an
    empty host port stays "any free port". Podman lists exposed but unpublished ports with null
    bindings: those publish nothing.
    """
    mappings = []
    for key, entries in sorted(bindings.items()):
        number, _, protocol = key.partition("/")
        if entries is None:
            continue
        for entry in entries or [PortBinding()]:  # [] records the port with no binding: any free one
            first, _, last = str(entry.get("HostPort") or "").partition("-")
            mappings.append(
                PortMapping(
                    int(number),
                    protocol or "tcp",
                    str(entry.get("HostIp") or ""),
                    int(first) if first.isdigit() else None,
                    int(last) if last.isdigit() and first.isdigit() and int(last) > int(first) else None,
                )
            )
    return mappings


def _long_form_to_short(spec: str, *, shown: str) -> str:
    """Rewrite ``target=80,published=8080,protocol=udp`` to ``8080:80/udp`` as the Docker CLI does."""
    params = {"protocol": "tcp"}
    for param in spec.split(","):
        key, sep, value = param.partition("=")
        if not sep or not key:
            raise PortSpecError(
                f"{shown} uses the long form, which needs name=value pairs separated by commas, "
                f"but one part is '{param}'.",
                hint="Write -p target=8888,published=8888 or, shorter, -p 8888:8888.",
            )
        # Later keys win and unknown keys are ignored, exactly as in the Docker CLI.
        params[key] = value
    return f"{params.get('published', '')}:{params.get('target', '')}/{params['protocol']}"


def _split_parts(spec: str) -> tuple[str, str, str]:
    """Split into (ip, host port, container port); an unbracketed IPv6 address keeps its colons."""
    parts = spec.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return ":".join(parts[:-2]), parts[-2], parts[-1]


def _split_proto_port(container: str) -> tuple[str, str]:
    """Split ``80/udp`` into (protocol, port); anything after a second slash is ignored, as in Docker."""
    pieces = container.split("/")
    if not pieces[0]:
        return "", ""
    if len(pieces) == 1 or not pieces[1]:
        return "tcp", pieces[0]
    return pieces[1], pieces[0]


def _parse_host_ip(ip: str, *, shown: str) -> str:
    if ip.startswith("["):
        match = _BRACKETED.fullmatch(ip)
        if match is None:
            raise PortSpecError(
                f"'{ip}' is not a bracketed IP address: expected one pair of brackets around the "
                f"address, like [::1] (in {shown}).",
                hint="After the closing bracket give the host port and the container port: "
                "-p [::1]:8888:8888 (IPv6), or -p 127.0.0.1:8888:8888 (IPv4).",
            )
        ip = match.group(1)
    if ip and not _is_ip(ip):
        raise PortSpecError(
            f"'{ip}' is not an IP address: the part before the host port must be a numeric address "
            f"such as 127.0.0.1 or [::1]; Docker does not look up host names here (in {shown}).",
            hint="Write -p 127.0.0.1:8888:8888 to publish on this computer only, or -p 8888:8888 for "
            "every address.",
        )
    return ip


def _is_ip(text: str) -> bool:
    """True for what Go's net.ParseIP accepts: IPv4 or IPv6, no zone (``%eth0``), no brackets."""
    if "%" in text:
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _parse_range(text: str, *, shown: str) -> tuple[int, int]:
    """Parse ``80`` or ``8000-8010``; like Docker, only the first two pieces of ``a-b-c`` count."""
    if "-" not in text:
        number = _parse_number(text, shown=shown)
        return number, number
    pieces = text.split("-")
    first = _parse_number(pieces[0], shown=shown, range_text=text)
    last = _parse_number(pieces[1], shown=shown, range_text=text)
    if last < first:
        raise PortSpecError(
            f"'{text}' is not a port range: the first port must not be larger than the last (in {shown}).",
            hint=f"Write the range upwards, e.g. {last}-{first}.",
        )
    return first, last


def _parse_number(text: str, *, shown: str, range_text: str = "") -> int:
    if range_text and not _DIGITS.fullmatch(text):
        raise PortSpecError(
            f"'{range_text}' is not a port range: expected FIRST-LAST with a port number on each "
            f"side of the dash (in {shown}).",
            hint="Write e.g. -p 8000-8005:8000-8005, or a single port: -p 8888:8888.",
        )
    if not _DIGITS.fullmatch(text):
        raise PortSpecError(
            f"'{text}' is not a port number: expected digits only, no signs, spaces or names (in {shown}).",
            hint=_FORM_HINT,
        )
    number = int(text)
    if number > MAX_PORT:
        raise PortSpecError(
            f"'{text}' is not a port number: ports run from 1 to {MAX_PORT} (in {shown}).",
            hint=_FORM_HINT,
        )
    return number


def _count(first: int, last: int) -> str:
    number = last - first + 1
    return "1 port" if number == 1 else f"{number} ports"


def _check_number(value: int, *, what: str) -> None:
    # Docker accepts 0 in -p (host port 0 = any free port), so PortMapping must accept it too.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PORT:
        raise PortSpecError(
            f"The {what} must be a port number from 0 to {MAX_PORT}, but it is {value!r}.",
            hint="Use a port such as 8888.",
        )
