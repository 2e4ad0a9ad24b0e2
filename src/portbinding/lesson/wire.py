"""What happens on the wire, engine by engine: one table, the learner's own row highlighted.

"curl says reset" is only true of some engines. Whether a request to a published port is
*accepted and then dropped* (reset, or an empty reply) or *refused* depends on what holds the
host port: a forwarding program that accepts first and connects onward (Docker's docker-proxy,
rootless Podman's rootlessport or pasta, Docker Desktop's port forwarder, the course's process
engine) or kernel NAT rules that rewrite the packet before any program sees it (Docker with
``--userland-proxy=false``, and for the host's own address even with it on; rootful Podman).

Each row says where its cells come from: **measured** on this project's test machines by
``tests/engine/test_wire_table.py`` (Docker Engine 20.10 with the userland proxy on and off,
rootless Podman 4.3, the process engine), or **cited** with its sources where no such machine
was available (Docker Desktop, Podman 5, rootful Podman). ``engine_row`` picks the learner's
row from what the engine reports; ``WireTable`` shows the table with that row marked in words,
not only in colour.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from portbinding.engine import Engine
from portbinding.lesson.hostview import ProxySetting, userland_proxy

LOGGER = logging.getLogger(__name__)

RowKey: TypeAlias = Literal[
    "docker-proxy", "docker-noproxy", "desktop", "podman4", "podman5", "podman-rootful", "process"
]
Situation: TypeAlias = Literal[
    "ok", "loopback_only", "wrong_container_port", "still_starting", "crashed", "not_published"
]
WirePath: TypeAlias = Literal["loopback", "host_ip", "tcp", "container_ip"]
Outcome: TypeAlias = Literal["answers", "refused", "reset", "timeout", "unreachable", "depends"]

SITUATIONS: tuple[Situation, ...] = (
    "ok", "loopback_only", "wrong_container_port", "still_starting", "crashed", "not_published",
)  # fmt: skip
PATHS: tuple[WirePath, ...] = ("loopback", "host_ip", "tcp", "container_ip")

SITUATION_TEXT: dict[Situation, str] = {
    "ok": "the app listens on 0.0.0.0 inside, -p HOST:APP_PORT",
    "loopback_only": "the app listens on 127.0.0.1 inside, -p HOST:APP_PORT",
    "wrong_container_port": "the app listens on 0.0.0.0:APP_PORT, -p HOST:OTHER_PORT",
    "still_starting": "the container runs, the app does not listen yet",
    "crashed": "the app exited before it listened",
    "not_published": "the app listens on 0.0.0.0 inside, no -p at all",
}
PATH_TEXT: dict[WirePath, str] = {
    "loopback": "curl http://127.0.0.1:HOST",
    "host_ip": "curl http://<this machine's address>:HOST (published on every address)",
    "tcp": "bare TCP connect to 127.0.0.1:HOST",
    "container_ip": "curl http://<container IP>:<the -p container port>, from the host",
}
OUTCOME_TEXT: dict[Outcome, str] = {
    "answers": "answers",
    "refused": "refused (curl 7)",
    "reset": "reset / empty reply (curl 56 or 52)",
    "timeout": "times out (curl 28)",
    "unreachable": "unreachable: no route from the host",
    "depends": "depends (see note)",
}
# What a bare TCP connect reports where curl would say `outcome`: a connect only sees the handshake.
TCP_WORDS: dict[Outcome, str] = {
    "answers": "connects",
    "reset": "connects (a false positive)",
    "refused": "refused",
    "timeout": "times out",
    "unreachable": "unreachable",
    "depends": "depends",
}

Forwarding: TypeAlias = Literal["proxy", "nat"]


@dataclass(frozen=True)
class Cell:
    outcome: Outcome
    note: str = ""


@dataclass(frozen=True)
class EngineRow:
    """One engine kind: how it forwards a published port, and where its facts come from."""

    key: RowKey
    title: str
    how: str
    evidence: Literal["measured", "cited"]
    sources: tuple[str, ...]
    loopback_path: Forwarding  # what a connection to 127.0.0.1:HOST meets
    host_ip_path: Forwarding  # what a connection to this machine's own address meets
    container_ip_reachable: bool  # can the host route to the container's own address?
    notes: dict[tuple[Situation, WirePath], Cell] = field(default_factory=dict)

    def cell(self, situation: Situation, path: WirePath) -> Cell:
        """What ``path`` reports in ``situation`` on this engine."""
        special = self.notes.get((situation, path))
        if special is not None:
            return special
        if path == "container_ip":
            if not self.container_ip_reachable:
                return Cell("unreachable")
            if situation == "crashed":
                return Cell("unreachable", "an exited container has no address")
            return Cell("answers" if situation in ("ok", "not_published") else "refused")
        if situation in ("crashed", "not_published"):
            return Cell("refused")  # nothing holds the host port: no program, no rule
        if situation == "ok":
            return Cell("answers")
        # Something holds the host port, and nothing listens where it forwards to.
        forwarding = self.host_ip_path if path == "host_ip" else self.loopback_path
        return Cell("reset" if forwarding == "proxy" else "refused")

    def says(self, situation: Situation, path: WirePath) -> str:
        """The cell as words (a bare TCP connect in its own words)."""
        cell = self.cell(situation, path)
        text = TCP_WORDS[cell.outcome] if path == "tcp" else OUTCOME_TEXT[cell.outcome]
        return f"{text} -- {cell.note}" if cell.note else text


_MEASURED_HERE = "measured by tests/engine/test_wire_table.py"

ROWS: tuple[EngineRow, ...] = (
    EngineRow(
        "docker-proxy",
        "Docker Engine on Linux, userland-proxy on (the default)",
        "docker-proxy holds the host port and accepts, then connects to the container; connections "
        "to the machine's own address are rewritten by NAT (DNAT) before docker-proxy sees them.",
        "measured",
        (f"{_MEASURED_HERE} on Docker Engine 20.10 (Debian 12)",),
        loopback_path="proxy",
        host_ip_path="nat",
        container_ip_reachable=True,
    ),
    EngineRow(
        "docker-noproxy",
        "Docker Engine on Linux, userland-proxy off (dockerd --userland-proxy=false)",
        "NAT rules alone: every connection, 127.0.0.1 included, is rewritten to the container's "
        "address by the kernel; no program accepts on its behalf.",
        "measured",
        (
            f"{_MEASURED_HERE} on a second Docker Engine 20.10 started with --userland-proxy=false",
            "https://docs.docker.com/engine/network/packet-filtering-firewalls/",
        ),
        loopback_path="nat",
        host_ip_path="nat",
        container_ip_reachable=True,
    ),
    EngineRow(
        "desktop",
        "Docker Desktop (macOS, Windows, WSL2 backend)",
        "Docker runs in a VM; Desktop's port forwarder listens on your machine and connects into the "
        "VM, on every address you published; the container network lives inside the VM.",
        "cited",
        (
            "https://docs.docker.com/desktop/features/networking/ (container IPs are not reachable "
            "from the host)",
            "https://github.com/docker/for-mac/issues/645 (curl to a container IP times out on macOS)",
            "https://github.com/docker/for-mac/issues/3763 (curl 52, empty reply, through a published port)",
        ),
        loopback_path="proxy",
        host_ip_path="proxy",
        container_ip_reachable=False,
    ),
    EngineRow(
        "podman4",
        "rootless Podman 4 (slirp4netns + rootlessport)",
        "rootlessport, a program of your own user, holds the host port on every address you "
        "published, accepts, then connects into the container's network namespace.",
        "measured",
        (f"{_MEASURED_HERE} on rootless Podman 4.3.1 (Debian 12)",),
        loopback_path="proxy",
        host_ip_path="proxy",
        container_ip_reachable=False,
    ),
    EngineRow(
        "podman5",
        "rootless Podman 5 (pasta)",
        "pasta, Podman 5's default rootless network, holds the host port, accepts and splices the "
        "connection into the container (containers on a bridge network still use rootlessport).",
        "cited",
        (
            "https://github.com/containers/podman/releases/tag/v5.0.0 (pasta: the default rootless network)",
            "https://github.com/containers/podman/issues/24045 (with pasta before late 2024, the host's "
            "127.0.0.1 reached a server bound to 127.0.0.1 inside the container)",
        ),
        loopback_path="proxy",
        host_ip_path="proxy",
        container_ip_reachable=False,
        notes={
            ("loopback_only", "loopback"): Cell(
                "depends",
                "newer pasta: reset, like rootlessport; pasta before the fix for podman#24045 "
                "(late 2024): it answers, because the connection arrives on the container's own loopback",
            ),
        },
    ),
    EngineRow(
        "podman-rootful",
        "rootful Podman (netavark)",
        "netavark writes NAT rules (DNAT, also for 127.0.0.1); conmon only holds the host port so "
        "nothing else takes it, it never accepts a connection.",
        "cited",
        (
            "https://github.com/containers/netavark/issues/636 (conmon holds the port, DNAT rules forward)",
            "https://github.com/containers/netavark/issues/362 (route_localnet: forwarding via 127.0.0.1)",
        ),
        loopback_path="nat",
        host_ip_path="nat",
        container_ip_reachable=True,
    ),
    EngineRow(
        "process",
        "the course's process engine (Binder: no container engine)",
        "the course's publisher plays docker-proxy on every host address: it accepts, then connects "
        "to the server's own address (127.42.0.N).",
        "measured",
        (f"{_MEASURED_HERE} on the process engine",),
        loopback_path="proxy",
        host_ip_path="proxy",
        container_ip_reachable=True,
    ),
)
ROW: dict[RowKey, EngineRow] = {row.key: row for row in ROWS}


@dataclass(frozen=True)
class Found:
    """The learner's row, and how the course recognised it."""

    row: EngineRow | None
    why: str


def engine_row(engine: Engine) -> Found:
    """The row for the engine ``engine`` talks to, from what it reports (None when no row fits)."""
    info = engine.info
    if info.kind == "process":
        return Found(ROW["process"], "the course's process engine answers (no container engine here)")
    if info.kind == "podman":
        if not info.rootless:
            return Found(ROW["podman-rootful"], f"Podman {info.version} runs as root")
        major = _major(info.version)
        key: RowKey = "podman5" if major is not None and major >= 5 else "podman4"
        return Found(ROW[key], f"rootless Podman {info.version}")
    system = _system_info(engine)
    if "docker desktop" in system.get("OperatingSystem", "").lower() or "linuxkit" in system.get(
        "KernelVersion", ""
    ):
        return Found(ROW["desktop"], f"Docker {info.version} reports {system.get('OperatingSystem')!r}")
    if info.rootless:
        return Found(
            None,
            f"rootless Docker {info.version} forwards through RootlessKit, which this table does not "
            "list (it accepts and connects onward, like rootless Podman 4's rootlessport)",
        )
    setting: ProxySetting | None = userland_proxy(info.url)
    if setting is None:
        return Found(
            ROW["docker-proxy"],
            f"Docker Engine {info.version}; its dockerd is not visible from here, so the default "
            "(userland-proxy on) is assumed",
        )
    key = "docker-proxy" if setting.on else "docker-noproxy"
    return Found(
        ROW[key],
        f"Docker Engine {info.version}, userland-proxy {'on' if setting.on else 'off'}: "
        f"read from {setting.how}",
    )


def _major(version: str) -> int | None:
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else None


def _system_info(engine: Engine) -> dict[str, str]:
    try:
        info = engine.client.info()
    except Exception:  # an engine that cannot say: the row is then Docker on Linux, said as such
        LOGGER.debug("docker info failed", exc_info=True)
        return {}
    return {str(k): str(v) for k, v in info.items() if isinstance(v, str)}


_CELL = "text-align:left;padding:4px 8px"  # JupyterLab right-aligns table cells unless told


class WireTable:
    """The table for one situation: every engine's row, the learner's marked in words and colour.

    Displayed in a notebook as HTML (a real ``<table>`` with a caption and header cells); its
    ``str()`` is the same table as text.
    """

    def __init__(
        self,
        situation: Situation,
        *,
        engine: Engine | None = None,
        found: Found | None = None,
        paths: tuple[WirePath, ...] = PATHS,
    ) -> None:
        self.situation = situation
        self.paths = paths
        if found is None and engine is not None:
            found = engine_row(engine)
        self.found = found

    @property
    def yours(self) -> EngineRow | None:
        return self.found.row if self.found else None

    def _mark(self, row: EngineRow) -> str:
        return "YOUR ENGINE" if self.yours is not None and row.key == self.yours.key else ""

    def __str__(self) -> str:
        lines = [f"{SITUATION_TEXT[self.situation]}:"]
        for row in ROWS:
            mark = self._mark(row)
            lines.append(
                f"{'>> ' if mark else '   '}{row.title} [{row.evidence}]" + (f"   <- {mark}" if mark else "")
            )
            for path in self.paths:
                lines.append(f"       {PATH_TEXT[path]}: {row.says(self.situation, path)}")
        lines.append(self._your_line())
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _your_line(self) -> str:
        if self.found is None:
            return "Your engine: not known (no engine was given)."
        if self.yours is None:
            return f"Your engine: {self.found.why}."
        return f"Your engine: {self.yours.title} -- {self.found.why}."

    def _repr_html_(self) -> str:
        esc = html.escape
        head = "".join(
            f'<th scope="col" style="{_CELL};vertical-align:bottom">{esc(PATH_TEXT[p])}</th>'
            for p in self.paths
        )
        body = []
        for row in ROWS:
            mark = self._mark(row)
            style = "background:var(--jp-warn-color3,#fff3cd);outline:2px solid #b58105" if mark else ""
            label = esc(row.title) + (f" <strong>&larr; {esc(mark.lower())}</strong>" if mark else "")
            label += f'<br><small style="font-weight:normal">{esc(row.evidence)}</small>'
            weight = "font-weight:600;" if mark else ""
            cells = "".join(
                f'<td style="{_CELL};{weight}vertical-align:top">{esc(row.says(self.situation, p))}</td>'
                for p in self.paths
            )
            body.append(
                f'<tr style="{style}"><th scope="row" style="{_CELL};vertical-align:top;min-width:14em">'
                f"{label}</th>{cells}</tr>"
            )
        how = "".join(
            f"<li><strong>{esc(row.title)}</strong>: {esc(row.how)} <em>{esc(row.evidence)}</em>: "
            f"{'; '.join(esc(s) for s in row.sources)}</li>"
            for row in ROWS
        )
        return (
            '<table class="pbl-wire" style="border-collapse:collapse;font-size:12px">'
            f"<caption style='text-align:left;font-weight:600;padding:4px 0'>On the wire, when "
            f"{esc(SITUATION_TEXT[self.situation])}</caption>"
            f'<thead><tr><th scope="col" style="{_CELL};vertical-align:bottom">engine</th>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>"
            f'<p role="note" style="margin:4px 0"><strong>{esc(self._your_line())}</strong></p>'
            f"<details><summary>How each engine forwards, and where each row comes from</summary>"
            f"<ul>{how}</ul></details>"
        )
