"""One rung of the ladder, looked at: the command a learner would type and what it shows.

The widget's rung buttons and ``portbinding challenge look`` run these. They gather through
the Engine API (so they work on every engine kind) and print what the CLI would print: the
``docker ps`` row, ``docker port`` lines, the LISTEN rows of /proc/net/tcp, a GET from inside,
curl's own words from the host. Looking never changes anything.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from docker.models.containers import Container

from portbinding.challenge.ladder import RUNG, Layer, cli_program
from portbinding.challenge.services import Service
from portbinding.diagnose.ladder import LearnerCommands
from portbinding.engine import Engine
from portbinding.errors import ContainerFailed
from portbinding.ports import bracket_host
from portbinding.probe import ProbeResult, probe_http
from portbinding.procnet import Listener

LOGGER = logging.getLogger(__name__)

# Every listener's answer to one GET, from inside, in one exec (slim images have python3, not curl).
_INSIDE_ALL = r"""
import json, sys, urllib.request, urllib.error
out = {}
for url in sys.argv[1:]:
    try:
        reply = urllib.request.urlopen(url, timeout=3)
        out[url] = "%d %s" % (reply.status, reply.read(300).decode("utf-8", "replace"))
    except urllib.error.HTTPError as exc:
        out[url] = "%d %s" % (exc.code, exc.read(300).decode("utf-8", "replace"))
    except Exception as exc:
        out[url] = "ERROR %s: %s" % (type(exc).__name__, exc)
print(json.dumps(out))
"""


@dataclass(frozen=True)
class RungView:
    """What looking at one rung showed."""

    layer: Layer
    subject: str  # the container looked at ("" when none is left)
    commands: list[str]
    output: str

    @property
    def title(self) -> str:
        rung = RUNG[self.layer]
        return f"Rung {rung.number}: {rung.title}"

    def text(self) -> str:
        """The commands with their output, as a terminal would show them."""
        shown = "\n".join(f"$ {line}" for line in self.commands)
        return f"{shown}\n{self.output}".rstrip()

    def to_dict(self) -> dict[str, object]:
        return {
            "layer": self.layer,
            "title": self.title,
            "subject": self.subject,
            "commands": self.commands,
            "output": self.output,
        }


def curl_says(result: ProbeResult) -> str:
    """What ``curl`` prints for the situation ``result`` found (the probe and curl agree on it)."""
    if result.http_status is not None:
        body = result.body_excerpt.strip()
        return f"< HTTP/1.1 {result.http_status}\n{body}" if body else f"< HTTP/1.1 {result.http_status}"
    where = urlsplit(result.target if "://" in result.target else f"http://{result.target}")
    words = {
        "refused": f"curl: (7) Failed to connect to {where.hostname} port {where.port}: Connection refused",
        "reset": "curl: (56) Recv failure: Connection reset by peer",
        "empty_reply": "curl: (52) Empty reply from server",
        "timeout": "curl: (28) Operation timed out",
        "unresolved": "curl: (6) Could not resolve host",
    }
    return words.get(result.outcome, result.detail)


def proc_hex(listener: Listener) -> str:
    """How /proc/net/tcp (or tcp6) spells a listener: the address in 32-bit little-endian words,
    then the port, in hex -- ``0100007F:22B8`` is 127.0.0.1:8888."""
    packed = ipaddress.ip_address(listener.address).packed
    words = "".join(packed[i : i + 4][::-1].hex() for i in range(0, len(packed), 4))
    return f"{words.upper()}:{listener.port:04X}"


def look(
    engine: Engine,
    layer: Layer,
    subject: Container | None,
    *,
    url: str,
    host_port: int,
    expected: Service,
) -> RungView:
    """Look at ``layer`` of ``subject`` (the container meant to serve ``url``; None if none is left)."""
    program = cli_program(engine.info.kind)
    if layer == "host":
        result = probe_http(url, timeout=3.0)
        return RungView(
            layer, "", [LearnerCommands.request_from_host(url, expect=expected.expect)], curl_says(result)
        )
    holders = f"{program} ps -a --filter publish={host_port}"
    if subject is None:
        why = f"No container is meant to publish host port {host_port} any more."
        return RungView(layer, "", [holders], f"{why}\n{_holders(engine, host_port)}")
    name = str(subject.name)
    said = LearnerCommands(name, program)
    if layer == "state":
        return RungView(layer, name, [said.ps(), said.logs(15)], _state(engine, subject))
    if layer == "published":
        return RungView(layer, name, [said.port(), holders], _published(engine, subject, host_port))
    if layer == "listening":
        return RungView(layer, name, [said.listeners()], _listening(engine, subject))
    answers = inside_answers(engine, subject, expected)
    if not answers:
        return RungView(
            layer, name, [said.listeners()], "(nothing listens inside, so there is nothing to ask)"
        )
    asked = [said.request_inside(target, path=expected.path, expect=expected.expect) for target, _ in answers]
    return RungView(
        layer, name, asked, "\n".join(f"{target}{expected.path}\n  -> {reply}" for target, reply in answers)
    )


def _ps_rows(containers: list[Container]) -> list[list[str]]:
    # docker ps's columns are drawn by the widgets' renderer; imported here, when used, because
    # the widgets package imports the challenge widget, which imports this module.
    from portbinding.widgets._live import ps_rows

    return ps_rows(containers)


def _state(engine: Engine, container: Container) -> str:
    engine.state(container)  # reloads its attributes
    header = f"{'CONTAINER ID':14}{'IMAGE':32}{'STATUS':28}{'PORTS':34}NAMES"
    row = _ps_rows([container])[0]
    line = f"{row[0]:14}{row[1]:32}{row[2]:28}{row[3]:34}{row[4]}"
    logs = engine.logs(container, tail=15).rstrip()
    return f"{header}\n{line}\n\n{logs or '(the container has written no output)'}"


def _published(engine: Engine, container: Container, host_port: int) -> str:
    lines = [str(port) for port in engine.ports(container)]
    text = "\n".join(lines) or "(no output: nothing of this container is published)"
    error = str((container.attrs.get("State") or {}).get("Error") or "")
    if error:
        text += f"\n\nWhy it is not running (docker inspect --format '{{{{.State.Error}}}}'):\n{error}"
    return f"{text}\n\nWho publishes host port {host_port}:\n{_holders(engine, host_port)}"


def _holders(engine: Engine, host_port: int) -> str:
    try:
        found = engine.client.containers.list(filters={"publish": f"{host_port}/tcp"}, ignore_removed=True)
    except Exception:  # a listing is extra detail: never fail a look over it
        LOGGER.debug("could not list the holders of %s", host_port, exc_info=True)
        return "(could not list the containers)"
    rows = _ps_rows(found)
    return "\n".join(f"{r[4]}  {r[1]}  {r[2]}  {r[3]}" for r in rows) or "(no running container publishes it)"


def _listening(engine: Engine, container: Container) -> str:
    try:
        found = engine.listeners(container)
    except ContainerFailed as error:
        return f"Error: {error.message}"
    if not found:
        return "(no LISTEN rows -- st 0A -- in either table: nothing listens yet)"
    rows = [
        f"  {proc_hex(item):>37}  0A  =  {item}" + ("   (loopback: inside only)" if item.is_loopback else "")
        for item in found
    ]
    return "LISTEN rows (local_address, st = 0A), decoded:\n" + "\n".join(rows)


def inside_answers(engine: Engine, container: Container, expected: Service) -> list[tuple[str, str]]:
    """Each listener's answer to a GET of ``expected.path`` from inside: ``(host:port, "status body")``."""
    targets = list(dict.fromkeys(f"{_reach(item)}:{item.port}" for item in engine.listeners(container)))
    if not targets:
        return []
    urls = [f"http://{target}{expected.path}" for target in targets]
    try:
        result = engine.exec(container, ["python3", "-c", _INSIDE_ALL, *urls], timeout=10)
    except ContainerFailed as error:
        return [(target, f"(could not ask: {error.message})") for target in targets]
    try:
        replies = json.loads(result.output.strip().splitlines()[-1])
    except (ValueError, IndexError):
        why = result.output.strip()[:200] or "no python3 in the image"
        return [(target, f"(could not ask from inside: {why})") for target in targets]
    return [
        (target, str(replies.get(url, "")).strip()[:240]) for target, url in zip(targets, urls, strict=True)
    ]


def _reach(listener: Listener) -> str:
    if listener.is_wildcard:
        return "127.0.0.1"  # '::' is dual-stack, and [::1] is switched off in Docker's default bridge
    return bracket_host(listener.address)
