"""Lesson 01's picture of the path a request takes, drawn from live state with matplotlib.

client -> host port -> the engine's port mapping -> the process listening inside. Every label
comes from what the engine and the container's kernel report; a hop that does not hold is red,
and says so in its text too (the picture's title names the outcome). The picture is shown with a
text alternative that says the same in words, hop by hop, for a screen reader (JupyterLab shows a
plain image output with no alt text at all).
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any
from urllib.parse import urlsplit

from docker.models.containers import Container

from portbinding.engine import Engine
from portbinding.ports import bracket_host
from portbinding.probe import ProbeResult

GOOD, BAD = "#c8e6c9", "#ffcdd2"
PLACES = ("your machine", "the host", "the engine", "inside the container")


def draw_path(engine: Engine, container: Container, container_port: int, result: ProbeResult) -> None:
    """Draw the request path for ``container_port`` of ``container``, given what a probe saw."""
    import matplotlib.pyplot as plt  # imported when drawn: the rest of the course needs no plotting
    from matplotlib.patches import FancyBboxPatch

    ports = [p for p in engine.ports(container) if p.container_port == container_port]
    host_port = ports[0].host_port if ports else None
    host_ips = ", ".join(sorted({bracket_host(p.host_ip) for p in ports})) or "nothing"
    on_port = [item for item in engine.listeners(container) if item.port == container_port]
    address = container.attrs["NetworkSettings"]["IPAddress"] or "container"
    target = urlsplit(result.target)
    listening = ", ".join(str(item) for item in on_port) or "nothing"
    boxes = [
        (f"client (curl, browser)\n{target.netloc}\nGET {target.path}", result.ok),
        (f"host port {host_port}\nopen on {host_ips}\n(docker-proxy + NAT rule)", bool(ports)),
        (f"port mapping\n{host_port}:{container_port}\n-> {address}:{container_port}", bool(ports)),
        (f"container process\nlistening on\n{listening}", any(item.is_wildcard for item in on_port)),
    ]
    figure, axes = plt.subplots(figsize=(12, 2.4))
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_axis_off()
    width, gap = 0.21, 0.045
    lefts = [0.015 + i * (width + gap) for i in range(len(boxes))]
    for left, (label, holds), place in zip(lefts, boxes, PLACES, strict=True):
        shape = FancyBboxPatch(
            (left, 0.18), width, 0.56, boxstyle="round,pad=0.01", fc=GOOD if holds else BAD, ec="#555"
        )
        axes.add_patch(shape)
        mark = "" if holds else "\n(does not hold)"
        axes.text(
            left + width / 2, 0.46, label + mark, ha="center", va="center", fontsize=9, family="monospace"
        )
        axes.text(left + width / 2, 0.86, place, ha="center", va="center", fontsize=9, color="#555")
    for left in lefts[:-1]:
        axes.annotate(
            "",
            xy=(left + width + gap - 0.004, 0.46),
            xytext=(left + width + 0.004, 0.46),
            arrowprops={"arrowstyle": "->", "lw": 2, "color": "#333"},
        )
    title = f"{container.name}: {result.outcome} (green = this hop holds)"
    axes.set_title(title, fontsize=10)
    hops = "; ".join(
        f"{place}, {' '.join(label.split())}: {'holds' if holds else 'does not hold'}"
        for (label, holds), place in zip(boxes, PLACES, strict=True)
    )
    alt = f"The path of a request, left to right. {container.name}: {result.outcome}. {hops}."
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(figure)
    from IPython.display import display

    display(picture_bundle(buffer.getvalue(), alt), raw=True)  # type: ignore[no-untyped-call]  # IPython is untyped


def picture_bundle(png: bytes, alt: str) -> dict[str, Any]:
    """A PNG as an output with its text alternative: an ``<img alt>`` for JupyterLab, the words
    for a plain-text front end (JupyterLab prefers the HTML)."""
    source = base64.b64encode(png).decode("ascii")
    image = f'<img src="data:image/png;base64,{source}" alt="{html.escape(alt)}" style="max-width:100%">'
    return {"text/html": image, "image/png": source, "text/plain": alt}
