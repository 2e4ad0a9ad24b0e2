"""This machine as a lesson sees it: its own addresses, who holds a host port, how dockerd forwards.

Read-only and traffic-free: addresses come from ``ip`` (or the kernel's choice of a source
address, which sends nothing), port holders and dockerd's options from /proc. Each function
answers "I cannot tell" (an empty list, None) where this machine cannot see the engine's host
-- a remote engine, or a kernel in a container -- rather than guessing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shlex
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

LOGGER = logging.getLogger(__name__)

IP_TIMEOUT_S = 5.0
# The bridges and veths of container engines are not what another machine on your network reaches.
_ENGINE_INTERFACES = ("docker", "br-", "veth", "cni", "podman", "virbr", "pbl-")
_TEST_NET = "192.0.2.1"  # RFC 5737: connect() on a UDP socket to it only picks a route


def own_addresses() -> list[str]:
    """This machine's own non-loopback IPv4 addresses, the ones a neighbour would use.

    Read from ``ip -4 addr`` (engine bridges left out); without ``ip``, the address the kernel
    would send from (a UDP ``connect`` picks a route and sends no packet).
    """
    found: list[str] = []
    listing = ""
    if shutil.which("ip"):
        try:
            done = subprocess.run(
                ["ip", "-4", "-o", "addr", "show", "scope", "global"],
                capture_output=True,
                text=True,
                timeout=IP_TIMEOUT_S,
                check=False,
            )
            listing = done.stdout
        except (OSError, subprocess.TimeoutExpired):
            LOGGER.debug("ip addr could not run", exc_info=True)
    for line in listing.splitlines():
        words = line.split()
        if len(words) > 3 and words[2] == "inet":
            interface, address = words[1], words[3].split("/")[0]
            if not interface.startswith(_ENGINE_INTERFACES):
                found.append(address)
    if not found:
        with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect((_TEST_NET, 9))
            address = str(sock.getsockname()[0])
            if not address.startswith("127."):
                found.append(address)
    return found


def _cmdlines() -> list[tuple[int, list[str]]]:
    """(pid, argv) of every process this machine shows us."""
    found = []
    for entry in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = [w.decode(errors="replace") for w in entry.read_bytes().split(b"\0") if w]
        except OSError:
            continue  # the process ended while we looked, or is not ours to read
        if words:
            found.append((int(entry.parent.name), words))
    return found


def docker_proxies(host_port: int) -> list[str]:
    """The arguments of each docker-proxy process that holds ``host_port`` here (sorted).

    Empty when none does: the userland proxy is off, the engine is not Docker, or it runs
    where this machine's /proc cannot see (a VM, another host, a kernel in a container).
    """
    found = []
    for _, words in _cmdlines():
        if Path(words[0]).name == "docker-proxy" and "-host-port" in words:
            index = words.index("-host-port") + 1
            if index < len(words) and words[index] == str(host_port):
                found.append(" ".join(words[1:]))
    return sorted(found)


@dataclass(frozen=True)
class ProxySetting:
    """Whether a dockerd runs its userland proxy, and how that was found out."""

    on: bool
    how: str  # for the learner: "dockerd's command line", "/etc/docker/daemon.json", "the default"


def userland_proxy(engine_url: str) -> ProxySetting | None:
    """The ``userland-proxy`` setting of the dockerd that serves ``engine_url`` on this machine.

    Read from that dockerd's command line, then its ``daemon.json``; on by default. None when
    no dockerd here serves that socket (a remote engine, Docker Desktop's VM, no /proc access).
    """
    if not engine_url.startswith("unix://"):
        return None
    socket_path = engine_url.removeprefix("unix://")
    for _, words in _cmdlines():
        if Path(words[0]).name != "dockerd" or not _serves(words, socket_path):
            continue
        flag = _option(words, "--userland-proxy", boolean=True)
        if flag is not None:
            return ProxySetting(
                flag.lower() not in ("false", "0"), f"dockerd's command line (--userland-proxy={flag})"
            )
        config = Path(_option(words, "--config-file") or "/etc/docker/daemon.json")
        try:
            setting = json.loads(config.read_text()).get("userland-proxy")
        except (OSError, ValueError, AttributeError):
            setting = None
        if isinstance(setting, bool):
            return ProxySetting(setting, f'{config} ("userland-proxy": {str(setting).lower()})')
        return ProxySetting(True, "the default (neither dockerd's command line nor daemon.json turns it off)")
    return None


def _option(words: list[str], name: str, *, boolean: bool = False) -> str | None:
    """The value of ``--name=value`` or ``--name value`` in argv; a bare boolean flag means "true".

    As in Go's flag parsing (dockerd's), a boolean flag takes its value only after ``=``.
    """
    for index, word in enumerate(words):
        if word.startswith(f"{name}="):
            return word.partition("=")[2]
        if word == name:
            if boolean:
                return "true"
            return words[index + 1] if index + 1 < len(words) else ""
    return None


def _serves(words: list[str], socket_path: str) -> bool:
    """Whether a dockerd with argv ``words`` listens on the unix socket ``socket_path``."""
    hosts = [w.partition("=")[2] for w in words if w.startswith(("--host=", "-H="))]
    hosts += [words[i + 1] for i, w in enumerate(words[:-1]) if w in ("--host", "-H")]
    unix = [h.removeprefix("unix://") for h in hosts if h.startswith("unix://") or h.startswith("/")]
    if not hosts:  # dockerd's default socket
        unix = ["/var/run/docker.sock", "/run/docker.sock"]
    same = {socket_path, socket_path.replace("/var/run/", "/run/"), socket_path.replace("/run/", "/var/run/")}
    return any(path in same for path in unix)


def quoted(words: list[str]) -> str:
    """argv as a learner would type it in a shell."""
    return " ".join(shlex.quote(word) for word in words)
