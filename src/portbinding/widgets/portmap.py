"""PortMapDiagram: the path of one connection, drawn from the container's live state.

    your machine --(published?)--> engine mapping HOST:CONTAINER --(listener on the port?)-->
    container eth0 --(listener on a non-loopback address?)--> the process inside

Each hop is green when the evidence says it holds and red when it does not (grey: not reached,
e.g. the container is not running). The same facts are given as plain text (``alt_text``), for
screen readers and for tests, so nothing depends on seeing the colours.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import ipywidgets as widgets
from docker.models.containers import Container

from portbinding.engine import Engine, PublishedPort
from portbinding.errors import PortBindingError
from portbinding.procnet import Listener
from portbinding.widgets import _live
from portbinding.widgets._base import WorkerBacked
from portbinding.widgets._ui import GREEN, GREY, RED, MessageArea, button, esc
from portbinding.widgets._worker import Worker

if TYPE_CHECKING:
    from portbinding.widgets.console import ContainerConsole, RunTarget

LOGGER = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class PortMap:
    """The live facts the diagram is drawn from."""

    container: str
    container_port: int
    running: bool
    exit_code: int | None
    publish_host: str
    published: tuple[PublishedPort, ...]
    container_ip: str
    listeners: tuple[Listener, ...]

    def hops(self) -> tuple[Hop, Hop, Hop]:
        port = self.container_port
        on_port = [item for item in self.listeners if item.port == port]
        outside = [item for item in on_port if not item.is_loopback]
        if not self.running:
            code = f", exit code {self.exit_code}" if self.exit_code is not None else ""
            return (
                Hop(
                    "published",
                    "host port published",
                    False,
                    f"the container is not running{code}: its published ports closed with it",
                ),
                Hop(
                    "port",
                    "listener on the container port",
                    None,
                    "not reached: the container is not running",
                ),
                Hop(
                    "address",
                    "listener reachable from outside",
                    None,
                    "not reached: the container is not running",
                ),
            )
        if self.published:
            mapping = self.published[0]
            published = Hop(
                "published",
                "host port published",
                True,
                f"host {mapping.host_ip or '0.0.0.0'}:{mapping.host_port} is mapped to container port "
                f"{port} (-p {_publish_flag(mapping.host_ip, mapping.host_port, port)}); "
                "the engine forwards it to "
                f"{self.container_ip or 'the container'}:{port}",
            )
        else:
            published = Hop(
                "published",
                "host port published",
                False,
                f"no host port is published for container port {port}: nothing on your machine "
                "leads into the container (add -p HOST:CONTAINER)",
            )
        everything = ", ".join(str(item) for item in self.listeners) or "nothing"
        if on_port:
            port_hop = Hop(
                "port",
                "listener on the container port",
                True,
                f"something listens on port {port} inside ({', '.join(str(i) for i in on_port)})",
            )
        else:
            port_hop = Hop(
                "port",
                "listener on the container port",
                False,
                f"nothing listens on port {port} inside the container (it listens on: {everything})",
            )
        if outside:
            address = Hop(
                "address",
                "listener reachable from outside",
                True,
                f"{outside[0]} accepts connections arriving on the container's interface "
                f"({self.container_ip or 'eth0'})",
            )
        elif on_port:
            address = Hop(
                "address",
                "listener reachable from outside",
                False,
                f"it listens on {on_port[0]} only: the container's own loopback. Forwarded connections "
                f"arrive on {self.container_ip or 'the container interface'}:{port} and find nothing",
            )
        else:
            address = Hop(
                "address",
                "listener reachable from outside",
                None,
                f"not reached: nothing listens on port {port}",
            )
        return published, port_hop, address


class PortMapDiagram(WorkerBacked, widgets.VBox):  # type: ignore[misc]
    """An SVG of the connection path for one container port, coloured by live evidence."""

    def __init__(self, engine: Engine | None = None) -> None:
        self._given_engine = engine
        self._container: Container | None = None
        self._port = 8888
        self._map: PortMap | None = None
        self._hops: tuple[Hop, ...] = ()
        self._uid = next(_ids)
        self._svg = widgets.HTML()
        self._svg.add_class("pbl-portmap-svg")
        self._alt = widgets.HTML()
        self._alt.add_class("pbl-portmap-alt")
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
            self._svg, self._alt, widgets.HBox([self._refresh]), self._message,
        ])  # fmt: skip
        self.add_class("pbl-portmap")
        self._svg.value = "<small>Nothing to draw yet: show(container, container_port).</small>"

    # ------------------------------------------------------------------ state

    @property
    def hops(self) -> tuple[Hop, ...]:
        """The hops last drawn, outside in."""
        return self._hops

    @property
    def alt_text(self) -> str:
        """The diagram in words (also shown under it)."""
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

    def __repr__(self) -> str:  # the text/plain fallback where widgets cannot render
        return f"PortMapDiagram(hops={[f'{hop.key}: {hop.verdict}' for hop in self._hops]!r})"

    # ------------------------------------------------------------------ actions

    def show(self, container: Container, container_port: int) -> tuple[Hop, ...]:
        """Draw ``container``'s path for ``container_port`` from its live state; returns the hops."""
        self._container, self._port = container, container_port
        return self._worker.call(self._draw_job, label="Reading the live state")

    def refresh(self) -> tuple[Hop, ...]:
        """Draw the same container again from fresh state."""
        return self._worker.call(self._draw_job, label="Reading the live state")

    def follow(self, console: ContainerConsole) -> None:
        """Redraw whenever ``console`` runs something."""
        console.observe_runs(self._on_console_run)

    # ------------------------------------------------------------------ handlers and jobs

    def _on_refresh_click(self, _: widgets.Button) -> None:
        self._worker.submit(self._draw_job, label="Reading the live state")

    def _on_console_run(self, target: RunTarget | None) -> None:
        if target is None:
            return
        self._container, self._port = target.container, target.container_port or self._port
        self._worker.submit(self._draw_job, label="Reading the live state", quiet=True)

    def _draw_job(self) -> tuple[Hop, ...]:
        container = self._container
        if container is None:
            raise PortBindingError(
                "There is no container to draw yet.",
                hint="call diagram.show(container, 8888) with a container you started",
            )
        engine = self.engine
        state = engine.state(container)
        running = state.get("Status") == "running"
        published = tuple(
            p for p in engine.ports(container) if p.container_port == self._port and p.protocol == "tcp"
        )
        facts = PortMap(
            container=str(container.name),
            container_port=self._port,
            running=running,
            exit_code=None if running else int(state.get("ExitCode", 0)),
            publish_host=engine.publish_host,
            published=tuple(sorted(published, key=lambda p: ":" in p.host_ip)),
            container_ip=_live.container_ip(container.attrs),
            listeners=tuple(_live.listeners(engine, container)) if running else (),
        )
        self._map, self._hops = facts, facts.hops()
        self._svg.value = self._draw(facts, self._hops)
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
            ("engine mapping", f"-p {host_port}:{facts.container_port}"),
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
            parts.append(
                f'<rect x="{x}" y="{top}" width="{box_w}" height="{box_h}" rx="8" '
                'fill="var(--jp-layout-color1,#fff)" stroke="var(--jp-ui-font-color2,#666)"/>'
                f'<text x="{x + box_w / 2}" y="{top + 22}" text-anchor="middle" font-size="12" '
                f'font-weight="600" fill="{_INK}">{esc(title)}</text>'
                f'<text x="{x + box_w / 2}" y="{top + 42}" text-anchor="middle" font-size="11" '
                f'font-family="monospace" fill="{_INK}">{esc(_fit(value, 24))}</text>'
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
    shown = f"[{host_ip}]" if ":" in host_ip else host_ip
    return f"{shown}:{host_port}:{container_port}"
