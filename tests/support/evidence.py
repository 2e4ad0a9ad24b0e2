"""Evidence written by hand, for tests of the pure half of the diagnosis (classify, views).

Each helper takes what a learner would read off the real commands -- ``0.0.0.0:8888`` from
/proc/net/tcp, ``8888/tcp -> 127.0.0.1:49000`` from ``docker port``, a reply line -- and builds
the structured evidence ``gather()`` would have produced from them.
"""

from __future__ import annotations

from typing import Any

from portbinding.command import parse_run
from portbinding.diagnose import Evidence, HostProbe, InsideAnswer, RunLine
from portbinding.diagnose.evidence import InsideOutcome
from portbinding.diagnose.ladder import Expect
from portbinding.engine import PublishedPort
from portbinding.ports import PortMapping, parse_publish
from portbinding.probe import ProbeResult
from portbinding.procnet import Listener

IMAGE = "web"
JUPYTER = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"version": "2.17.0"}'
HTTP = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nplaceholder service: not Jupyter"
ECHO = "GET /api HTTP/1.0\r\nHost: localhost\r\n\r\n"
BANNER = "SSH-2.0-OpenSSH_9.2\r\n"


def listener(text: str) -> Listener:
    """``0.0.0.0:8888`` or ``[::]:80`` as a Listener."""
    host, _, port = text.rpartition(":")
    return Listener(host.strip("[]"), int(port), "ipv6" if host.startswith("[") else "ipv4")


def answer(target: str, reply: str = "", *, outcome: InsideOutcome = "reply", of: str | None = None,
           forwarded: bool = False) -> InsideAnswer:  # fmt: skip
    """What a connection to ``target`` from inside got; ``of`` is the listener it tests (default: target)."""
    where = listener(of or target)
    return InsideAnswer(where.address, where.port, reply, target, outcome if reply == "" else "reply",
                        forwarded=forwarded)  # fmt: skip


def published(text: str) -> PublishedPort:
    """``8888 -> 127.0.0.1:49000`` as a PublishedPort."""
    container, _, host = text.partition("->")
    host_ip, _, host_port = host.strip().rpartition(":")
    return PublishedPort(int(container.strip()), "tcp", host_ip.strip("[]"), int(host_port))


def host_probe(outcome: str, *, kind: Expect = "http", status: int | None = None) -> HostProbe:
    """A host probe's result: ``ok`` (HTTP 200 unless ``status``), ``reset``, ``refused``, ..."""
    if kind == "http" and outcome in ("ok", "unexpected_response") and status is None:
        status = 200
    result = ProbeResult(outcome, f"{outcome} (written by hand)", 1.0, status, "", "http://127.0.0.1:49000/")  # type: ignore[arg-type]
    return HostProbe(kind, result)


def run_line(line: str, **extras: Any) -> RunLine:
    """A learner's ``docker run`` line (course flags only) plus extras such as ``network="host"``."""
    return RunLine(parse_run(line, allowed_images=(IMAGE,)), **extras)


def evidence(
    *,
    status: str = "running",
    port: int | None = 8888,
    ports: tuple[str, ...] = ("8888 -> 127.0.0.1:49000",),
    requested: str | None = None,
    listening: tuple[str, ...] = ("0.0.0.0:8888",),
    answers: tuple[InsideAnswer, ...] | None = None,
    host: HostProbe | str | None = "ok",
    run: str = f"docker run -d -p 127.0.0.1:49000:8888 {IMAGE}",
    extras: dict[str, Any] | None = None,
    **more: Any,
) -> Evidence:
    """A running, published, listening, answering container unless told otherwise."""
    sockets = tuple(listener(text) for text in listening)
    if answers is None:
        answers = tuple(answer(f"127.0.0.1:{item.port}", HTTP, of=str(item)) for item in sockets)
    probe = host_probe(host) if isinstance(host, str) else host
    requested_ports = tuple(parse_publish(requested)) if requested else tuple(
        PortMapping(p.container_port, "tcp", p.host_ip, p.host_port) for p in map(published, ports)
    )  # fmt: skip
    base: dict[str, Any] = {
        "container": "web",
        "image": IMAGE,
        "status": status,
        "exit_code": None if status == "running" else 1,
        "health": None,
        "running_for_s": 30.0 if status == "running" else None,
        "log_tail": [],
        "container_port": port,
        "requested": requested_ports,
        "ports": tuple(published(text) for text in ports) if status == "running" else (),
        "sockets": sockets if status == "running" else (),
        "answers": answers if status == "running" else (),
        "host": probe if status == "running" else None,
        "host_url": "http://127.0.0.1:49000/" if probe is not None else None,
        "run": run_line(run, **(extras or {})),
        "look": "exec" if status == "running" else "none",
        "forwarded_to": "172.17.0.2",
        "networks": {"bridge": "172.17.0.2"},
    }
    base.update(more)
    return Evidence(**base)
