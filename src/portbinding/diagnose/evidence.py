"""What was observed, rung by rung: plain data the classifier reads and every view shows.

:class:`Evidence` holds the facts ``gather()`` collected -- structured (listeners, published
ports, answers from inside, the host probe), each with its provenance -- and nothing decided.
Its string views (``published``, ``listeners``, ``inside``, ``host_probe``) are what the CLI,
the widgets and the grading feedback print; :meth:`Evidence.trail` turns it into observations,
one per piece of evidence, each with the command a learner types to see it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from portbinding.diagnose.ladder import SOURCE_TEXT, Expect, Layer, LearnerCommands, LookPath, Source
from portbinding.diagnose.peerevidence import LocalRef, PeerEvidence, UpstreamEvidence
from portbinding.diagnose.runline import RunLine
from portbinding.engine import PublishedPort
from portbinding.ports import PortMapping, bracket_host
from portbinding.probe import ProbeResult
from portbinding.procnet import Listener

InsideOutcome: TypeAlias = Literal[
    "reply",
    "silent",
    "closed",
    "reset",
    "refused",
    "timeout",
    "no_address",
    "unresolved",
    "error",
    "not_probed",
]
"""What one connection from inside the container's network namespace got.

``reply``: bytes came back; ``silent``: accepted, nothing sent back within the wait, still open;
``closed``/``reset``: accepted, then ended without a byte; ``refused``: nothing listens there;
``no_address``: the address does not exist in that namespace (``[::1]`` with IPv6 switched off);
``unresolved``: the name does not resolve there (the namespace's own resolver says so).
"""

PortOrigin: TypeAlias = Literal["asked", "published", "requested", "exposed", "listening", "none"]
"""Where the container port under diagnosis came from: the caller, ``-p``, EXPOSE, a listener."""

_OUTCOME_WORDS: dict[InsideOutcome, str] = {
    "reply": "answered",
    "silent": "accepted the connection and kept it open without sending anything",
    "closed": "accepted the connection, then closed it without a reply",
    "reset": "accepted the connection, then reset it without a reply",
    "refused": "refused: nothing listens there",
    "timeout": "no answer in time",
    "no_address": "that address does not exist in this container (IPv6 is switched off here)",
    "unresolved": "the name does not resolve there",
    "error": "could not be tried",
    "not_probed": "not probed",
}


@dataclass(frozen=True)
class InsideAnswer:
    """What a connection to one listener (``address:port``) got, made at ``target`` from inside."""

    address: str
    port: int
    reply: str = ""
    target: str = ""
    outcome: InsideOutcome = "reply"
    detail: str = ""
    forwarded: bool = False  # made at the address the engine forwards published traffic to
    resolved: str = ""  # the address a name in ``target`` resolved to, where it was a name

    @property
    def accepted(self) -> bool:
        return self.outcome in ("reply", "silent", "closed", "reset")

    @property
    def is_http(self) -> bool:
        return self.reply.startswith("HTTP/")

    @property
    def status(self) -> int | None:
        """The HTTP status of the reply (``502`` from a proxy whose upstream is down), if HTTP."""
        parts = self.reply.split("\r\n", 1)[0].split(" ")
        return int(parts[1]) if self.is_http and len(parts) > 1 and parts[1].isdigit() else None

    @property
    def is_loopback(self) -> bool:
        return self.address.startswith("127.") or self.address in ("::1", "::ffff:127.0.0.1")

    @property
    def is_jupyter(self) -> bool:
        head, _, body = self.reply.partition("\r\n\r\n")
        if not head.startswith("HTTP/1") or " 200 " not in head.split("\r\n", 1)[0]:
            return False
        try:
            return "version" in json.loads(body)
        except ValueError:
            return False

    def words(self) -> str:
        """What happened, for a learner: the reply's first line, or the outcome in words."""
        via = f" (resolved to {self.resolved})" if self.resolved else ""
        if self.outcome == "reply":
            first = self.reply.split("\r\n", 1)[0].split("\n", 1)[0][:120]
            return (first if self.is_http else f"answered, not in HTTP: {first!r}") + via
        if self.outcome == "unresolved" and self.detail:
            return f"{_OUTCOME_WORDS[self.outcome]} ({self.detail})"
        return _OUTCOME_WORDS[self.outcome] + via


@dataclass(frozen=True)
class HostProbe:
    """The probe from this machine (or ``None`` in Evidence when there was nothing to probe)."""

    kind: Expect  # "tcp": connect and wait for data or a hang-up; otherwise an HTTP GET
    result: ProbeResult

    @property
    def reachable(self) -> bool:
        """An HTTP reply of any status, or (tcp) a connection that got data or stayed open."""
        return self.result.ok if self.kind == "tcp" else self.result.reachable


@dataclass(frozen=True)
class Observation:
    """One piece of evidence: its rung, what it showed, the command that shows it, its source."""

    layer: Layer
    what: str
    shows: str
    command: str
    source: Source

    def to_dict(self) -> dict[str, str]:
        return {
            "layer": self.layer,
            "what": self.what,
            "shows": self.shows,
            "command": self.command,
            "source": self.source,
            "source_text": SOURCE_TEXT[self.source],
        }


@dataclass(frozen=True)
class Evidence:
    """Everything observed about one container port, rung by rung, and where each fact came from."""

    container: str
    image: str
    status: str
    exit_code: int | None
    health: str | None
    running_for_s: float | None
    log_tail: list[str]
    container_port: int | None
    port_origin: PortOrigin = "asked"
    engine_kind: str = "docker"
    engine_remote: bool = False
    publish_host: str = "127.0.0.1"
    oom_killed: bool = False
    restart_policy: str = ""
    restart_count: int = 0
    network_mode: str = "default"
    networks: dict[str, str] = field(default_factory=dict)  # network name -> this container's IPv4
    forwarded_to: str | None = None  # the address published traffic is forwarded to
    requested: tuple[PortMapping, ...] = ()  # -p as given (HostConfig.PortBindings)
    ports: tuple[PublishedPort, ...] = ()  # what the engine publishes now (docker port)
    sockets: tuple[Listener, ...] = ()
    answers: tuple[InsideAnswer, ...] = ()
    host: HostProbe | None = None
    host_url: str | None = None
    peer: PeerEvidence | None = None
    upstream: UpstreamEvidence | None = None
    compose: tuple[str, str] | None = None  # (project, service) when Compose made the container
    local_refs: tuple[LocalRef, ...] = ()  # its own configuration pointing at localhost:PORT
    run: RunLine | None = None
    look: LookPath = "none"
    tools: tuple[str, ...] = ("cat", "python3")  # which of these the container has, as far as seen
    provenance: dict[str, Source] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    path: str = "/"
    # Host ports a fix would use that something else holds now, each with a free one to use
    # instead (a local engine only): another container took a crashed one's port since, say.
    taken: dict[int, int] = field(default_factory=dict)

    # ------------------------------------------------------------------ views: CLI, widgets, grading

    @property
    def published(self) -> list[str]:
        """``docker port`` lines: ``8888/tcp -> 127.0.0.1:49153``."""
        return [str(port) for port in self.ports]

    @property
    def listeners(self) -> list[str]:
        """Listening sockets inside, ``0.0.0.0:8888`` and ``[::]:80``."""
        return [str(item) for item in self.sockets]

    @property
    def inside(self) -> dict[str, str]:
        """Each probe made inside: ``{"127.0.0.1:8888": "HTTP/1.1 200 OK"}``, errors in words."""
        return {
            answer.target or f"{bracket_host(answer.address)}:{answer.port}": answer.words()
            for answer in self.answers
        }

    @property
    def host_probe(self) -> dict[str, object] | None:
        return self.host.result.to_dict() if self.host else None

    @property
    def running(self) -> bool:
        return self.status == "running"

    def commands(self) -> LearnerCommands:
        program = "podman" if self.engine_kind == "podman" else "docker"
        return LearnerCommands(
            self.container, program, cat="cat" in self.tools, python="python3" in self.tools
        )

    def on_port(self) -> list[Listener]:
        return [item for item in self.sockets if item.port == self.container_port]

    def mapped(self) -> list[PublishedPort]:
        return [p for p in self.ports if p.container_port == self.container_port and p.protocol == "tcp"]

    def dead_ends(self) -> list[PublishedPort]:
        """Other published TCP ports with nothing listening where forwarded traffic arrives (if looked)."""
        if self.look == "none":
            return []
        heard = {item.port for item in self.sockets if not item.is_loopback} | {self.container_port}
        return [p for p in self.ports if p.protocol == "tcp" and p.container_port not in heard]

    # ------------------------------------------------------------------ the trail

    def trail(self) -> tuple[Observation, ...]:
        """Every piece of evidence as an observation on its rung, with the command that shows it."""
        cli = self.commands()
        found: list[Observation] = []
        state = self.status + (f" (exit code {self.exit_code})" if self.exit_code is not None else "")
        if self.restart_count:
            state += f", restarted {self.restart_count} times (--restart {self.restart_policy})"
        if self.running_for_s is not None and self.running:
            state += f", up {self.running_for_s:.1f} s"
        found.append(Observation("state", "state", state, cli.state(), self._source("state", "engine")))
        if self.log_tail:
            tail = " | ".join(line.strip() for line in self.log_tail[-3:])[:300]
            found.append(Observation("state", "logs", tail, cli.logs(), self._source("logs", "logs")))
        ports = ", ".join(self.published) or "nothing"
        if self.network_mode == "host":
            ports = f"nothing: --network host (the -p options {_flags(self.requested)} are ignored)"
        found.append(
            Observation("published", "published", ports, cli.port(), self._source("published", "engine"))
        )
        if self.running and self.look != "none":
            listening = ", ".join(self.listeners) or "nothing"
            found.append(
                Observation(
                    "listening", "listeners", listening, cli.listeners(), self._source("listeners", "none")
                )
            )
        for answer in self.answers:
            if answer.port != self.container_port:
                continue
            expect: Expect = "http" if answer.is_http or self.path != "/" else "tcp"
            found.append(
                Observation(
                    "inside",
                    f"inside {answer.target}",
                    answer.words(),
                    cli.request_inside(
                        answer.target or f"{answer.address}:{answer.port}", path=self.path, expect=expect
                    ),
                    self._source("inside", "none"),
                )
            )
        if self.host is not None and self.host_url:
            result = self.host.result
            shows = f"{result.outcome}: {result.detail}"
            found.append(
                Observation(
                    "host",
                    "from this machine",
                    shows,
                    cli.request_from_host(self.host_url, expect=self.host.kind),
                    self._source("host", "host"),
                )
            )
        if self.peer is not None:
            found.extend(self._peer_trail(cli))
        if self.upstream is not None:
            found.append(
                Observation(
                    "inside",
                    f"the proxy's upstream {self.upstream.target}",
                    f"{self.upstream.reason}: {self.upstream.line.strip()[:200]}",
                    cli.logs(),
                    self._source("upstream", "logs"),
                )
            )
        for ref in self.local_refs:
            shows = (
                "something listens there inside" if ref.listening else "nothing listens on that port inside"
            )
            found.append(
                Observation(
                    "host",
                    f"its own {ref.word}",
                    shows,
                    cli.environment(),
                    self._source("local_refs", "engine"),
                )
            )
        return tuple(found)

    def _peer_trail(self, cli: LearnerCommands) -> list[Observation]:
        peer = self.peer
        assert peer is not None
        found = [
            Observation(
                "host",
                f"networks of {self.container} and {peer.name}",
                f"{', '.join(self.networks) or 'none'} / {', '.join(peer.networks) or 'none'}; "
                f"shared: {', '.join(peer.shared) or 'no user-defined network'}",
                cli.networks(peer.name),
                "engine",
            )
        ]
        for seen in (peer.via_localhost, peer.via_name):
            if seen is not None:
                found.append(
                    Observation(
                        "host",
                        f"from {peer.name} to {seen.target}",
                        seen.words(),
                        cli.request_from_peer(peer.name, seen.target),
                        self._source("peer", "peer"),
                    )
                )
        for use in peer.names_used:
            if use.answer is not None:
                found.append(
                    Observation(
                        "host",
                        f"from {peer.name}, the name {use.name} ({use.word})",
                        use.answer.words(),
                        cli.request_from_peer(peer.name, f"{use.name}:{use.port}"),
                        self._source("peer", "peer"),
                    )
                )
        return found

    def _source(self, key: str, default: Source) -> Source:
        return self.provenance.get(key, default)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: the long-standing keys (status, published, listeners, inside, host_probe, ...)
        plus where each piece came from (``provenance``, ``look``) and the ``trail``."""
        return {
            "container": self.container,
            "image": self.image,
            "status": self.status,
            "exit_code": self.exit_code,
            "health": self.health,
            "running_for_s": self.running_for_s,
            "log_tail": list(self.log_tail),
            "container_port": self.container_port,
            "port_origin": self.port_origin,
            "published": self.published,
            "listeners": self.listeners,
            "inside": self.inside,
            "host_probe": self.host_probe,
            "host_url": self.host_url,
            "notes": list(self.notes),
            "engine": {
                "kind": self.engine_kind,
                "remote": self.engine_remote,
                "publish_host": self.publish_host,
            },
            "restart": {
                "policy": self.restart_policy,
                "count": self.restart_count,
                "oom_killed": self.oom_killed,
            },
            "network": {
                "mode": self.network_mode,
                "addresses": dict(self.networks),
                "forwarded_to": self.forwarded_to,
            },
            "requested": [m.to_spec() for m in self.requested],
            "taken_host_ports": {str(port): free for port, free in self.taken.items()},
            "peer": None
            if self.peer is None
            else {
                "name": self.peer.name,
                "shared_networks": list(self.peer.shared),
                "mentions_localhost": list(self.peer.mentions_localhost),
                "via_localhost": self.peer.via_localhost.words() if self.peer.via_localhost else None,
                "via_name": self.peer.via_name.words() if self.peer.via_name else None,
                "names_used": {
                    use.name: use.answer.words() if use.answer else None for use in self.peer.names_used
                },
                "server_names": list(self.peer.server_names),
                "service": self.peer.service,
            },
            "upstream": None
            if self.upstream is None
            else {
                "target": self.upstream.target,
                "reason": self.upstream.reason,
                "line": self.upstream.line,
                "container": self.upstream.container,
                "status": self.upstream.status,
            },
            "compose": None
            if self.compose is None
            else {"project": self.compose[0], "service": self.compose[1]},
            "local_refs": [
                {"word": r.word, "port": r.port, "listening": r.listening, "candidates": list(r.candidates)}
                for r in self.local_refs
            ],
            "run_line": self.run.to_cli() if self.run else None,
            "look": self.look,
            "tools": list(self.tools),
            "provenance": dict(self.provenance),
            "trail": [item.to_dict() for item in self.trail()],
        }


def _flags(mappings: tuple[PortMapping, ...]) -> str:
    return " ".join(f"-p {m.to_spec()}" for m in mappings) or "(none given)"
