"""The payoff link: the fixed Jupyter server, opened in the learner's browser with its token.

The token comes from ``docker logs`` (Jupyter prints it in its startup URL), but the host and port
in that URL are the container's own (``127.0.0.1:8888``): the link keeps the token and takes the
host and port from what is really published (``docker port``). Where the browser runs on another
machine than the engine (JupyterHub, Binder, a remote engine) the link cannot work, and says so.
"""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from docker.models.containers import Container

from portbinding.engine import Engine
from portbinding.ports import bracket_host

_TOKEN = re.compile(r"https?://\S+?/\S*?[?&]token=([0-9a-f]+)")
_HOSTED = ("JUPYTERHUB_SERVICE_PREFIX", "BINDER_SERVICE_HOST", "BINDER_LAUNCH_HOST")


@dataclass(frozen=True)
class JupyterLink:
    """Where the server answers, the log line the token came from, and whether a browser here can open it."""

    url: str  # with the token (empty when none was found)
    log_line: str  # the line of `docker logs` that carried the token
    port_line: str  # what `docker port NAME PORT` says: where the server really is
    host_port: int | None
    browser_here: bool
    why_not: str = ""

    def __str__(self) -> str:
        if not self.url:
            return f"No token in the log yet ({self.why_not})."
        lines = [
            f"docker logs:  {self.log_line}   (the token; host and port as the container sees them)",
            f"docker port:  {self.port_line}   (where it is published on your machine)",
            f"Open it here: {self.url}",
        ]
        if not self.browser_here:
            lines.append(f"(This link works only in a browser on the engine's machine: {self.why_not}.)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        if not self.url:
            return f"<p>{html.escape(str(self))}</p>"
        note = "" if self.browser_here else f"<br><em>{html.escape(self.why_not)}</em>"
        return (
            f"<p><code>docker logs</code>: <code>{html.escape(self.log_line)}</code> &mdash; the token, "
            "with the host and port the container sees<br>"
            f"<code>docker port</code>: <code>{html.escape(self.port_line)}</code> &mdash; where it is "
            "published on your machine<br>"
            f'Your server: <a href="{html.escape(self.url)}" target="_blank" rel="noopener">'
            f"{html.escape(self.url)}</a>{note}</p>"
        )


def jupyter_link(engine: Engine, container: Container, container_port: int = 8888) -> JupyterLink:
    """The browser link to ``container``'s Jupyter: the token from its log, host and port from the engine."""
    base = engine.url(container, container_port, "/")
    host_port = engine.host_port(container, container_port)
    token_line = ""
    token = ""
    for line in engine.logs(container, tail=200).splitlines():
        found = _TOKEN.search(line)
        if found:
            token_line, token = line.strip(), found.group(1)
    published = [p for p in engine.ports(container) if p.container_port == container_port]
    port_line = "; ".join(f"{bracket_host(p.host_ip or '0.0.0.0')}:{p.host_port}" for p in published)
    if base is None:
        return JupyterLink("", "", "", None, False, f"container port {container_port} is not published")
    if not token:
        return JupyterLink(
            "", "", port_line, host_port, False, "Jupyter has not printed its URL yet; run again"
        )
    browser_here, why_not = True, ""
    hosted = [name for name in _HOSTED if os.environ.get(name)]
    if hosted:
        browser_here = False
        why_not = (
            f"this notebook runs on a server ({hosted[0]} is set), not on the computer your browser runs on"
        )
    elif urlsplit(base).hostname not in ("127.0.0.1", "localhost", "::1"):
        browser_here = urlsplit(base).hostname is not None
        why_not = "" if browser_here else "the engine's address is unknown"
    return JupyterLink(f"{base}?token={token}", token_line, port_line, host_port, browser_here, why_not)
