"""PortMapDiagram: the path of one connection, drawn from the container's live state.

    your machine --(published?)--> engine mapping HOST:CONTAINER --(listener on the port?)-->
    container eth0 --(listener on a non-loopback address?)--> the process inside

The picture reads the diagnosis (``portbinding.diagnose``), so it can never disagree with the
words: the hop where the diagnosed cause sits is red, the hops before it green, those after it
grey (not reached). The same facts are given as plain text (``alt_text``), for screen readers
and for tests, so nothing depends on seeing the colours.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeAlias

import ipywidgets as widgets
from docker.models.containers import Container

from portbinding.diagnose import Cause, Diagnosis, Evidence, Expect, diagnose
from portbinding.engine import Engine, PublishedPort
from portbinding.errors import ContainerNotFound, PortBindingError
from portbinding.ports import bracket_host
from portbinding.procnet import Listener
from portbinding.widgets import _live
from portbinding.widgets._base import WorkerBacked
from portbinding.widgets._ui import GREEN, GREY, RED, MessageArea, button, esc
from portbinding.widgets._worker import Worker
from portbinding.widgets.session import watch_removals

if TYPE_CHECKING:
    from portbinding.widgets.console import ContainerConsole, RunTarget

_ids = itertools.count(1)
_INK = "var(--jp-ui-font-color1,#222)"


@dataclass(frozen=True)
class Hop:
    """One hop of the path: does it hold (None: not reached), and why, in words."""

    key: str  # "published", "port", "address"
    title: str
    ok: bool | None
    detail: str

    @property
    def colour_word(self) -> str:
        return {True: "green", False: "red", None: "grey"}[self.ok]

    @property
    def verdict(self) -> str:
        return {True: "holds", False: "broken", None: "not reached"}[self.ok]


HopKey: TypeAlias = Literal["published", "port", "address"]
HOP_KEYS: tuple[HopKey, ...] = ("published", "port", "address")

HOP_OF: dict[Cause, HopKey | None] = {
    "ok": None,
    # A container that is not running has no published ports: the first hop is where it shows.
    "crashed": "published",
    "crash_loop": "published",
    "stopped": "published",
    "not_published": "published",
    "host_network": "published",
    "unusable_host_address": "published",
    "peer_localhost": "published",
    "not_same_network": "published",
    "name_unresolved": "published",
    # Every hop to the proxy holds: the break is behind it, past the end of this diagram.
    "upstream_down": None,
    "wrong_container_port": "port",
    "port_retried": "port",
    "still_starting": "port",
    "wrong_service": "port",
    "loopback_only": "address",
    "wrong_address": "address",
    "ipv6_only": "address",
}
"""Where the diagram draws each cause the diagnosis names: the view's mapping, not a decision."""


@dataclass(frozen=True)
class PortMap:
    """What the diagram is drawn from: one diagnosis (its evidence, its cause) and the container's IP.

    The diagram never decides which hop is broken: the diagnosis names the cause, :data:`HOP_OF`
    says where that cause is drawn, the hops before it hold and those after it are not reached.
    """

    diagnosis: Diagnosis
    container_ip: str = ""

    @property
    def evidence(self) -> Evidence:
        return self.diagnosis.evidence

    @property
    def container(self) -> str:
        return self.evidence.container

    @property
    def container_port(self) -> int:
        return self.evidence.container_port or 0

    @property
    def running(self) -> bool:
        return self.evidence.running

    @property
    def exit_code(self) -> int | None:
        return self.evidence.exit_code

    @property
    def publish_host(self) -> str:
        return self.evidence.publish_host

    @property
    def published(self) -> tuple[PublishedPort, ...]:
        return tuple(sorted(self.evidence.mapped(), key=lambda p: ":" in p.host_ip))

    @property
    def listeners(self) -> tuple[Listener, ...]:
        return self.evidence.sockets

    def hops(self) -> tuple[Hop, Hop, Hop]:
        broken = HOP_OF[self.diagnosis.cause]
        cut = HOP_KEYS.index(broken) if broken is not None else len(HOP_KEYS)
        hops = []
        for index, key in enumerate(HOP_KEYS):
            ok = True if index < cut else False if index == cut else None
            detail = self._detail(key)
            if ok is False:
                detail = f"{detail}. {self.diagnosis.summary}"
            elif ok is None:
                detail = (
                    f"not reached: {self._not_reached()} ({detail})"
                    if self.running
                    else ("not reached: the container is not running")
                )
            hops.append(Hop(key, _TITLES[key], ok, detail))
        return hops[0], hops[1], hops[2]

    def _not_reached(self) -> str:
        broken = HOP_OF[self.diagnosis.cause]
        return f"the {_TITLES[broken]} hop breaks first" if broken else "nothing broke"

    def _detail(self, key: HopKey) -> str:
        ev, port = self.evidence, self.container_port
        ip = self.container_ip or ev.forwarded_to or ""
        if not self.running:
            code = f", exit code {self.exit_code}" if self.exit_code is not None else ""
            return f"the container is {ev.status}{code}: its published ports closed with it"
        if key == "published":
            if ev.network_mode == "host":
                return (
                    f"--network host: there is no mapping, the server uses this machine's port {port} itself"
                )
            if not self.published:
                return (
                    f"no host port is published for container port {port}: nothing on your machine leads "
                    "into the container (add -p HOST:CONTAINER)"
                )
            mapping = self.published[0]
            return (
                f"host {mapping.host_ip or '0.0.0.0'}:{mapping.host_port} is mapped to container port {port} "
                f"(-p {_publish_flag(mapping.host_ip, mapping.host_port, port)}); the engine forwards it to "
                f"{ip or 'the container'}:{port}"
            )
        on_port = ev.on_port()
        if key == "port":
            if on_port:
                return f"something listens on port {port} inside ({', '.join(str(i) for i in on_port)})"
            everything = ", ".join(str(item) for item in self.listeners) or "nothing"
            return f"nothing listens on port {port} inside the container (it listens on: {everything})"
        outside = [item for item in on_port if not item.is_loopback]
        reachable = [item for item in outside if item.is_wildcard or item.address == ip]
        if reachable and self.diagnosis.cause not in ("ipv6_only", "wrong_address"):
            return (
                f"{reachable[0]} accepts connections arriving on the container's interface ({ip or 'eth0'})"
            )
        if on_port:
            return (
                f"it listens on {on_port[0]} only. Forwarded connections arrive on "
                f"{ip or 'the container interface'}:{port} and find nothing"
            )
        return f"nothing listens on port {port}"


_TITLES: dict[HopKey, str] = {
    "published": "host port published",
    "port": "listener on the container port",
    "address": "listener reachable from outside",
}


class PortMapDiagram(WorkerBacked, widgets.VBox):  # type: ignore[misc]
    """An SVG of the connection path for one container port, coloured by live evidence."""

    def __init__(self, engine: Engine | None = None) -> None:
        self._given_engine = engine
        self._container: Container | None = None
        self._port = 8888
        self._expect: Expect | None = None
        self._path = "/"
        self._map: PortMap | None = None
        self._hops: tuple[Hop, ...] = ()
        self._gone = ""  # why the container drawn last is not there any more
        self._uid = next(_ids)
        self._svg = widgets.HTML()
        self._svg.add_class("pbl-portmap-svg")
        self._alt = widgets.HTML()
        self._alt.add_class("pbl-portmap-alt")
        self._summary = widgets.HTML()  # where the path stops, in words: colour is never the only signal
        self._summary.add_class("pbl-portmap-summary")
        self._refresh = button(
            "Refresh",
            css_class="pbl-refresh",
            icon="refresh",
            tooltip="Read the container's live state again",
        )
        self._message = MessageArea()
        self._worker = Worker(self._message, buttons=[self._refresh], name="portbinding-portmap")
        self._refresh.on_click(self._on_refresh_click)
        super().__init__(children=[
            widgets.HTML("<b>Port map</b> — where does the connection go, and where does it stop?"),
            self._svg, self._summary, self._alt, widgets.HBox([self._refresh]), self._message,
        ])  # fmt: skip
        self.add_class("pbl-portmap")
        self.add_class("pbl-keys")  # keys pressed in it stay with it (see _announce.py)
        self._svg.value = (
            "<small>Nothing to draw yet: run a container, then show it here "
            "(<code>diagram.show(container, 8888)</code>).</small>"
        )
        watch_removals(self._on_removed)

    # ------------------------------------------------------------------ state

    @property
    def hops(self) -> tuple[Hop, ...]:
        """The hops last drawn, outside in."""
        return self._hops

    @property
    def alt_text(self) -> str:
        """The diagram in words (also shown under it)."""
        if self._gone:
            return f"{self._gone} There is no path to draw: run a container, then refresh."
        if self._map is None:
            return "No container shown yet."
        head = (
            f"Port map for container {self._map.container}, container port {self._map.container_port}, "
            f"reached from {self._map.publish_host}:"
        )
        lines = [head] + [
            f"{number}. {hop.title}: {hop.verdict} ({hop.colour_word}) — {hop.detail}."
            for number, hop in enumerate(self._hops, start=1)
        ]
        return "\n".join(lines)

    @property
    def summary(self) -> str:
        """One line: where the path stops (the first broken hop), or that every hop holds."""
        if self._map is None:
            return ""
        for number, hop in enumerate(self._hops, start=1):
            if hop.ok is False:
                detail = hop.detail.rstrip(".")  # a detail may end its own sentence
                return f"✖ The path stops at hop {number} of {len(self._hops)}, {hop.title}: {detail}."
        if all(hop.ok for hop in self._hops):
            return "✔ Every hop holds: the connection reaches the server."
        return "· Not every hop could be checked: " + "; ".join(
            f"{hop.title}: {hop.verdict}" for hop in self._hops
        )

    def __repr__(self) -> str:  # the text/plain fallback where widgets cannot render
        return f"PortMapDiagram(hops={[f'{hop.key}: {hop.verdict}' for hop in self._hops]!r})"

    # ------------------------------------------------------------------ actions

    def show(
        self, container: Container, container_port: int, *, expect: Expect | None = None, path: str = "/"
    ) -> tuple[Hop, ...]:
        """Draw ``container``'s path for ``container_port`` from its live diagnosis; returns the hops.

        ``expect`` and ``path`` are the diagnosis's (what should answer, what the host GETs).
        """
        self._container, self._port, self._expect, self._path = container, container_port, expect, path
        return self._worker.call(self._draw_job, label="Reading the live state")

    def refresh(self) -> tuple[Hop, ...]:
        """Draw the same container again from fresh state."""
        return self._worker.call(self._draw_job, label="Reading the live state")

    def follow(self, console: ContainerConsole) -> None:
        """Redraw whenever ``console`` runs something."""
        console.observe_runs(self._on_console_run)
        if self._container is None and not self._gone:
            # The learner's next step is the console's Run button, not a call they have not met.
            self._svg.value = (
                "<small>Nothing to draw yet: run a container in the console: its path is drawn here.</small>"
            )

    # ------------------------------------------------------------------ handlers and jobs

    def _on_refresh_click(self, _: widgets.Button) -> None:
        self._worker.submit(self._draw_job, label="Reading the live state")

    def _on_console_run(self, target: RunTarget | None) -> None:
        if target is None:
            if self._container is not None and not self._gone:
                self._show_gone(str(self._container.name), "from the console")
            return
        self._container, self._port = target.container, target.container_port or self._port
        self._expect, self._path = target.expect, target.path
        self._worker.submit(self._draw_job, label="Reading the live state", quiet=True)

    def _on_removed(self, names: frozenset[str], how: str) -> None:
        if self._container is not None and str(self._container.name) in names:
            self._show_gone(str(self._container.name), how)

    def _show_gone(self, name: str, how: str) -> None:
        """The container is gone: drop the drawing (its colours would describe nothing) and say so."""
        self._gone = f"{name} was removed {how}".rstrip() + "."
        self._map, self._hops = None, ()
        self._svg.value = f'<p class="pbl-portmap-gone" style="margin:4px 0">{esc(self.alt_text)}</p>'
        self._alt.value = self._summary.value = ""

    def _draw_job(self) -> tuple[Hop, ...]:
        container = self._container
        if container is None:
            raise PortBindingError(
                "There is no container to draw yet.",
                hint="call diagram.show(container, 8888) with a container you started",
            )
        engine = self.engine
        try:
            found = diagnose(
                engine, container, container_port=self._port, expect=self._expect, path=self._path
            )
        except ContainerNotFound:
            self._show_gone(str(container.name), "(it is not there any more: docker rm, or --rm)")
            raise
        self._gone = ""
        facts = PortMap(found, _live.container_ip(container.attrs))
        self._map, self._hops = facts, facts.hops()
        self._svg.value = self._draw(facts, self._hops)
        self._summary.value = f'<div style="line-height:1.45;margin:2px 0">{esc(self.summary)}</div>'
        self._alt.value = (
            '<details class="pbl-alt-details"><summary>The diagram in words</summary>'
            '<pre class="pbl-alt-text" style="white-space:pre-wrap;font-size:12px">'
            f"{esc(self.alt_text)}</pre>"
            "</details>"
        )
        self._message.clear()
        return self._hops

    # ------------------------------------------------------------------ drawing

    def _draw(self, facts: PortMap, hops: tuple[Hop, ...]) -> str:
        mapping = facts.published[0] if facts.published else None
        host_port = str(mapping.host_port) if mapping else "—"
        on_port = [item for item in facts.listeners if item.port == facts.container_port]
        process = (
            str(on_port[0])
            if on_port
            else (
                ", ".join(str(i) for i in facts.listeners[:2])
                or ("not running" if not facts.running else "nothing")
            )
        )
        boxes = [
            ("your machine", f"{facts.publish_host}:{host_port}"),
            # The address too when it is a specific one: the lessons teach -p 127.0.0.1:HOST:CONTAINER.
            (
                "engine mapping",
                "-p "
                + (
                    _publish_flag(mapping.host_ip, mapping.host_port, facts.container_port)
                    if mapping
                    else f"{host_port}:{facts.container_port}"
                ),
            ),
            ("container eth0", f"{facts.container_ip or '?'}:{facts.container_port}"),
            ("process inside", f"listens {process}"),
        ]
        labels = ["host port", "container port", "bind address"]
        uid = f"pbl{self._uid}"
        width, box_w, box_h, gap, top = 840, 160, 60, 60, 34
        parts = [
            f'<svg class="pbl-portmap-drawing" viewBox="0 0 {width} 140" width="100%" '
            f'style="max-width:{width}px" role="img" aria-labelledby="{uid}-title">',
            f'<title id="{uid}-title">{esc(self.alt_text)}</title>',
            "<defs>",
        ]
        for name, colour in (("green", GREEN), ("red", RED), ("grey", GREY)):
            parts.append(
                f'<marker id="{uid}-{name}" markerWidth="12" markerHeight="12" refX="10" refY="6" '
                'markerUnits="userSpaceOnUse" '
                'orient="auto">'
                f'<path d="M0,0 L12,6 L0,12 z" fill="{colour}"/></marker>'
            )
        parts.append("</defs>")
        for index, (title, value) in enumerate(boxes):
            x = 10 + index * (box_w + gap)
            shown = _fit(value, 30)
            # A long value (-p 127.0.0.1:46837:8888) is squeezed into the box, not run into its edge.
            squeeze = f' textLength="{box_w - 14}" lengthAdjust="spacingAndGlyphs"' if len(shown) > 21 else ""
            parts.append(
                f'<rect x="{x}" y="{top}" width="{box_w}" height="{box_h}" rx="8" '
                'fill="var(--jp-layout-color1,#fff)" stroke="var(--jp-ui-font-color2,#666)"/>'
                f'<text x="{x + box_w / 2}" y="{top + 22}" text-anchor="middle" font-size="12" '
                f'font-weight="600" fill="{_INK}">{esc(title)}</text>'
                f'<text x="{x + box_w / 2}" y="{top + 42}" text-anchor="middle" font-size="11" '
                f'font-family="monospace" fill="{_INK}"{squeeze}>{esc(shown)}</text>'
            )
        for index, hop in enumerate(hops):
            colour = {True: GREEN, False: RED, None: GREY}[hop.ok]
            x1 = 10 + index * (box_w + gap) + box_w + 2
            x2 = x1 + gap - 6
            y = top + box_h / 2
            mark = {True: "✔", False: "✖", None: "·"}[hop.ok]
            parts.append(
                f'<g class="pbl-hop" data-hop="{hop.key}" data-ok="{hop.colour_word}">'
                f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" stroke="{colour}" stroke-width="4" '
                f'marker-end="url(#{uid}-{hop.colour_word})"/>'
                f'<text x="{(x1 + x2) / 2}" y="{top - 8}" text-anchor="middle" font-size="11" '
                f'fill="{colour}">{esc(labels[index])}</text>'
                f'<text x="{(x1 + x2) / 2}" y="{top + box_h + 22}" text-anchor="middle" font-size="16" '
                f'fill="{colour}">{mark}</text></g>'
            )
        parts.append("</svg>")
        return "".join(parts)


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _publish_flag(host_ip: str, host_port: int, container_port: int) -> str:
    """The -p value that gives this mapping: the address only when it is a specific one."""
    if host_ip in ("", "0.0.0.0", "::"):
        return f"{host_port}:{container_port}"
    return f"{bracket_host(host_ip)}:{host_port}:{container_port}"
