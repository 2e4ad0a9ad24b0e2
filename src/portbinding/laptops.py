"""The engines learners have on laptops, as the rows of one table, with the learner's own row marked.

On Linux, Docker Engine runs on the machine itself: ``docker-proxy`` holds a published port,
iptables rewrites traffic to the host's own address, the host routes to container addresses,
and ufw's rules are walked past (the nat table comes first). Docker Desktop (macOS, Windows,
and Docker Desktop for Linux) runs the engine in a **virtual machine**: a forwarder program on
the laptop holds the published port and relays into the VM, so every address of the laptop
behaves like loopback does on Linux (accepted, then reset when nothing answers inside), the
containers' own addresses are not routable from the laptop, and the laptop's firewall sees
the forwarder as an ordinary program. In WSL2 without Desktop, the engine runs in the WSL2
VM with Linux's rules, and Windows reaches it through WSL2's *localhost forwarding*.

Each row says where its cells come from: **measured** on this project's machines (the Linux
row, by tests/engine/test_laptops.py) or **cited** from the vendor's documentation, because no
such machine was available to measure. :func:`laptop_row` picks the learner's row from what the
engine and this machine report -- the same facts ``portbinding doctor`` prints -- and
:class:`LaptopTable` shows the table with that row marked in words, not only in colour.
"""

from __future__ import annotations

import html
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeAlias
from urllib.parse import urlsplit

from portbinding.engine import Engine
from portbinding.engine_errors import ENGINE_ERRORS

LOGGER = logging.getLogger(__name__)

RowKey: TypeAlias = Literal["linux", "desktop-vm", "desktop-windows", "wsl2-engine", "podman"]

COLUMNS: tuple[tuple[str, str], ...] = (
    ("runs", "where the containers run"),
    ("holds", "what holds a published port on your machine"),
    ("host_ip", "an app on 127.0.0.1 inside, reached at your machine's own address"),
    ("container_ip", "the container's own IP, from your machine"),
    ("localhost", "localhost from your desktop (Windows)"),
    ("firewall", "your machine's firewall (ufw, iptables, Windows/macOS firewall)"),
    ("host_from_container", "reaching your machine from a container"),
)
DESKTOP_NETWORKING = "https://docs.docker.com/desktop/features/networking/"
DOCKER_UFW = "https://docs.docker.com/engine/network/packet-filtering-firewalls/"
WSL_NETWORKING = "https://learn.microsoft.com/windows/wsl/networking"
WSL_CONFIG = "https://learn.microsoft.com/windows/wsl/wsl-config"
PODMAN_NETWORKING = "https://github.com/containers/podman/blob/main/docs/tutorials/basic_networking.md"


@dataclass(frozen=True)
class LaptopRow:
    key: RowKey
    title: str
    cells: dict[str, str]
    evidence: Literal["measured", "cited"]
    sources: tuple[str, ...]


ROWS: tuple[LaptopRow, ...] = (
    LaptopRow(
        "linux",
        "Docker Engine on Linux (this course's reference)",
        {
            "runs": "on your machine itself",
            "holds": "docker-proxy (loopback), iptables DNAT (every other address)",
            "host_ip": "refused (curl 7): DNAT rewrites it, nothing listens where it lands",
            "container_ip": "routable: the bridge (172.17.0.0/16) is on your machine",
            "localhost": "-",
            "firewall": "ufw/firewalld rules are walked past: Docker's nat rules come first; "
            "filter in DOCKER-USER",
            "host_from_container": "--add-host=host.docker.internal:host-gateway (Docker 20.10+): the bridge "
            "gateway, 172.17.0.1; a host app on 127.0.0.1 refuses it",
        },
        "measured",
        (DOCKER_UFW,),
    ),
    LaptopRow(
        "desktop-vm",
        "Docker Desktop on macOS (and Docker Desktop for Linux)",
        {
            "runs": "in a Linux virtual machine",
            "holds": "Desktop's port forwarder, a program on your machine",
            "host_ip": "reset / empty reply, like loopback: the forwarder accepts, then finds nothing",
            "container_ip": "unreachable: no route into the VM",
            "localhost": "-",
            "firewall": "the forwarder is an ordinary program to the macOS firewall; iptables rules live "
            "in the VM, out of your reach",
            "host_from_container": "host.docker.internal, built in",
        },
        "cited",
        (DESKTOP_NETWORKING,),
    ),
    LaptopRow(
        "desktop-windows",
        "Docker Desktop on Windows (WSL2 back end)",
        {
            "runs": "in WSL2's utility VM (the docker-desktop distribution)",
            "holds": "Desktop's port forwarder, a Windows program",
            "host_ip": "reset / empty reply, like loopback",
            "container_ip": "unreachable from Windows",
            "localhost": "localhost:PORT reaches published ports (the forwarder listens on Windows)",
            "firewall": "Windows Defender Firewall rules for Desktop's backend apply; ufw does not exist",
            "host_from_container": "host.docker.internal, built in",
        },
        "cited",
        (DESKTOP_NETWORKING, WSL_NETWORKING),
    ),
    LaptopRow(
        "wsl2-engine",
        "Docker Engine inside a WSL2 distribution (no Desktop)",
        {
            "runs": "in the WSL2 VM, with Linux's rules there",
            "holds": "docker-proxy and DNAT inside the VM",
            "host_ip": "inside WSL2: refused, as on Linux; Windows' own address does not forward (NAT mode)",
            "container_ip": "routable inside WSL2, not from Windows",
            "localhost": "localhost forwarding (on by default in NAT mode) carries Windows' localhost:PORT "
            "to a listener in WSL2; networkingMode=mirrored shares the addresses instead",
            "firewall": "iptables/ufw inside WSL2 as on Linux; the Hyper-V firewall in mirrored mode",
            "host_from_container": "--add-host=host.docker.internal:host-gateway reaches the WSL2 VM, "
            "not Windows",
        },
        "cited",
        (WSL_NETWORKING, WSL_CONFIG, DOCKER_UFW),
    ),
    LaptopRow(
        "podman",
        "rootless Podman on Linux (Podman Desktop/machine on macOS and Windows: a VM, as Desktop)",
        {
            "runs": "on your machine, in a user namespace",
            "holds": "rootlessport (Podman 4) or pasta (Podman 5), a program of yours",
            "host_ip": "reset / empty reply, like loopback: the forwarder accepts first",
            "container_ip": "not routable: the containers live in a network namespace of your user",
            "localhost": "-",
            "firewall": "applies: the forwarder is an ordinary listening program",
            "host_from_container": "host.containers.internal, built in (Podman 4.1+)",
        },
        "cited",
        (PODMAN_NETWORKING,),
    ),
)
ROW: dict[RowKey, LaptopRow] = {row.key: row for row in ROWS}


@dataclass(frozen=True)
class Placed:
    """The learner's row (None: none fits) and why, in words."""

    row: LaptopRow | None
    why: str


def laptop_row(engine: Engine, *, platform: str | None = None, proc_version: str | None = None) -> Placed:
    """Which row is the learner's: from the engine's own report and this machine's platform."""
    info = engine.info
    here = platform or sys.platform
    kernel_here = proc_version if proc_version is not None else _proc_version()
    if info.kind == "process":
        return Placed(None, "the course's process engine (Binder) runs no containers: none of these rows")
    if info.kind == "podman":
        return Placed(ROW["podman"], f"{'rootless ' if info.rootless else ''}Podman {info.version}")
    try:
        system = engine.client.info()
    except ENGINE_ERRORS as exc:
        LOGGER.debug("engine info: %s", exc)
        system = {}
    os_name = str(system.get("OperatingSystem", ""))
    kernel = str(system.get("KernelVersion", ""))
    said = f"Docker {info.version} reports {os_name or 'no operating system'!r}, kernel {kernel or '?'!r}"
    if "docker desktop" in os_name.lower():
        if here == "win32" or "microsoft" in kernel.lower():
            return Placed(ROW["desktop-windows"], said)
        return Placed(ROW["desktop-vm"], said)
    if "microsoft" in kernel.lower() or "microsoft" in kernel_here.lower():
        return Placed(ROW["wsl2-engine"], said + "; a WSL2 kernel")
    if info.url.startswith(("tcp://", "ssh://")):
        return Placed(ROW["linux"], said + f"; the engine is on another machine ({info.url}): its row, there")
    return Placed(ROW["linux"], said)


def _proc_version() -> str:
    try:
        return Path("/proc/version").read_text()
    except OSError:
        return ""


class LaptopTable:
    """The table, the learner's row marked (a ▶ and the words "your engine"), as HTML and as text."""

    def __init__(self, engine: Engine, *, placed: Placed | None = None) -> None:
        self.placed = placed or laptop_row(engine)

    @property
    def yours(self) -> RowKey | None:
        return self.placed.row.key if self.placed.row else None

    def summary(self) -> str:
        if self.placed.row is None:
            return f"Your engine: {self.placed.why}."
        return f"Your engine is the row marked ▶ -- {self.placed.row.title} ({self.placed.why})."

    def text(self) -> str:
        lines = [self.summary()]
        for row in ROWS:
            mark = "▶ your engine: " if row.key == self.yours else ""
            lines.append(f"\n{mark}{row.title} [{row.evidence}: {', '.join(row.sources)}]")
            lines += [f"  {title}: {row.cells[key]}" for key, title in COLUMNS if row.cells[key] != "-"]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:  # the text/plain fallback where HTML is not shown
        return self.text()

    def _repr_html_(self) -> str:
        # JupyterLab right-aligns table cells and lets a wide table run off the page: every cell
        # is set left and top, given room to read, and the table scrolls sideways in its own box.
        cell = "text-align:left;vertical-align:top;min-width:11em;padding:4px 8px"
        head = "".join(f"<th scope='col' style='{cell}'>{html.escape(title)}</th>" for _, title in COLUMNS)
        body = []
        for row in ROWS:
            mine = row.key == self.yours
            style = " style='background:#fff3cd;font-weight:bold'" if mine else ""
            label = ("▶ your engine: " if mine else "") + row.title
            sources = ", ".join(
                f"<a href='{html.escape(s)}' title='{html.escape(s)}'>{html.escape(_site(s))}</a>"
                for s in row.sources
            )
            cells = "".join(f"<td style='{cell}'>{html.escape(row.cells[key])}</td>" for key, _ in COLUMNS)
            body.append(
                f"<tr{style}><th scope='row' style='{cell}'>{html.escape(label)}<br>"
                f"<small>{row.evidence}: {sources}</small></th>{cells}</tr>"
            )
        return (
            f"<p role='status'>{html.escape(self.summary())}</p><div style='overflow-x:auto'>"
            "<table><caption>Where your engine runs, and what that changes</caption>"
            f"<thead><tr><th scope='col' style='{cell}'>engine</th>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div>"
        )


def _site(url: str) -> str:
    """A source's site name (docs.docker.com), short enough for a table cell; the link has it whole."""
    return urlsplit(url).hostname or url
