"""The troubleshooting ladder: its rungs, the causes found on each, and the commands that show them.

A learner climbs from the outside in (DESIGN.md section 5), stopping at the first rung that does
not hold:

1. ``state``      -- container state: is it running (``docker ps -a``, ``docker logs``)?
2. ``published``  -- published ports: does a host port lead into it (``docker port``)?
3. ``listening``  -- what listens inside, on which address (``cat /proc/net/tcp`` inside)?
4. ``inside``     -- what answers inside (a request from within its network namespace)?
5. ``host``       -- what answers from the host (``curl -v`` from this machine), or from the
   container that is meant to reach it.

This module is the shared vocabulary: every cause names its rung (:data:`CAUSE_LAYER`), every
piece of evidence says where it came from (:data:`Source`) and which command a learner types
to see it for themselves (:class:`LearnerCommands`, spelled for the engine's own CLI). It does
no I/O, so hints, widgets, the CLI and the grader can all build on it.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Literal, TypeAlias

from portbinding.images import LOCAL_BASE
from portbinding.ports import bracket_host

Layer: TypeAlias = Literal["state", "published", "listening", "inside", "host"]
LAYERS: tuple[Layer, ...] = ("state", "published", "listening", "inside", "host")
"""The rungs, outside in: the order a learner checks them and the order the classifier does."""

LAYER_TITLE: dict[Layer, str] = {
    "state": "container state",
    "published": "published ports",
    "listening": "what listens inside, on which address",
    "inside": "what answers inside",
    "host": "what answers from the host",
}
"""Each rung's learner-facing name."""

LAYER_QUESTION: dict[Layer, str] = {
    "state": "Is the container running, and did it stay up?",
    "published": "Does a host port you can use lead to the container port?",
    "listening": "Does something listen on that container port, on an address forwarded traffic reaches?",
    "inside": "Does the service you expect answer there, inside the container?",
    "host": "Does it answer from where you connect (this machine, or the other container)?",
}
"""The question each rung answers, for hints that point at a rung without giving the cause away."""

Cause: TypeAlias = Literal[
    "ok",
    "crashed",
    "crash_loop",
    "stopped",
    "not_published",
    "host_network",
    "unusable_host_address",
    "wrong_container_port",
    "port_retried",
    "still_starting",
    "loopback_only",
    "wrong_address",
    "ipv6_only",
    "wrong_service",
    "upstream_down",
    "peer_localhost",
    "not_same_network",
    "name_unresolved",
]
CAUSES: tuple[Cause, ...] = (
    "ok", "crashed", "crash_loop", "stopped", "not_published", "host_network", "unusable_host_address",
    "wrong_container_port", "port_retried", "still_starting", "loopback_only", "wrong_address", "ipv6_only",
    "wrong_service", "upstream_down", "peer_localhost", "not_same_network", "name_unresolved",
)  # fmt: skip

CAUSE_LAYER: dict[Cause, Layer] = {
    "crashed": "state",
    "crash_loop": "state",
    "stopped": "state",
    "not_published": "published",
    "host_network": "published",
    "unusable_host_address": "published",
    "wrong_container_port": "listening",
    "port_retried": "listening",
    "still_starting": "listening",
    "loopback_only": "listening",
    "wrong_address": "listening",
    "ipv6_only": "listening",
    "wrong_service": "inside",
    "upstream_down": "inside",
    "peer_localhost": "host",
    "not_same_network": "host",
    "name_unresolved": "host",
    # Every rung holds: "host" is the last one checked, not a broken one (Diagnosis.broken_layer is None).
    "ok": "host",
}
"""The rung each cause breaks (the first rung that does not hold)."""

SUMMARY: dict[Cause, str] = {
    "ok": "Reachable: the published port leads to a server that answers.",
    "crashed": "The container is not running: the app exited before (or after) opening its socket.",
    "crash_loop": "The app keeps crashing and its restart policy keeps starting it again: it looks up "
    "for a moment, but never stays up long enough to answer.",
    "stopped": "The container is not running because it was stopped (or never started), not because "
    "the app failed.",
    "not_published": "The server listens inside the container, but no host port is published for it.",
    "host_network": "The container shares the host's network (--network host): -p is ignored, and the "
    "server listens directly on the host's own port.",
    "unusable_host_address": "The port is published only on an address that cannot be reached from "
    "where you connect.",
    "wrong_container_port": "Nothing listens on the container port in question: the app listens on "
    "another one.",
    "port_retried": "The server found its port taken inside the container and quietly moved to another one.",
    "still_starting": "The container runs, but nothing listens on the port yet: the app is still starting.",
    "loopback_only": "The server listens on 127.0.0.1 inside the container (or ::1, IPv6's loopback), "
    "which only the container itself can reach.",
    "wrong_address": "The server listens on one specific address inside the container, not the one "
    "forwarded traffic arrives on.",
    "ipv6_only": "The server listens on IPv6 only, but forwarded traffic arrives over IPv4.",
    "wrong_service": "Something answers on the published port, but it is not the service you expected.",
    "upstream_down": "The reverse proxy answers, but with 502 Bad Gateway (or 503/504): the service behind "
    "it is down, unreachable from the proxy, or its name does not resolve there.",
    "peer_localhost": "A container connects to localhost to reach another one, but inside a container "
    "localhost is the container itself: containers reach each other by name on a shared network.",
    "not_same_network": "The two containers share no user-defined network, so neither its name nor its "
    "address leads from one to the other.",
    "name_unresolved": "The name the other container uses does not resolve on their shared network: it is "
    "not this container's name, nor one of its aliases (a Compose service name).",
}
"""One sentence per cause, for headlines in widgets, CLI output, hints and grading feedback."""

Expect: TypeAlias = Literal["jupyter", "http", "tcp"]
"""What should answer: a Jupyter server (``GET /api``), any HTTP server, or any TCP service."""

Source: TypeAlias = Literal["engine", "logs", "exec", "procfs", "helper", "host", "peer", "none"]
"""Where a piece of evidence came from (its provenance).

``engine``: the engine's API (inspect, port list); ``logs``: the container's output; ``exec``: a
command run inside the container itself; ``procfs``: the host kernel's view of the container's
process (``/proc/PID/net/tcp``, and a probe from inside its network namespace); ``helper``: a
short-lived course container joined to its network namespace; ``host``: a probe from this
machine; ``peer``: a probe from the container that is meant to reach it; ``none``: not gathered.
"""

SOURCE_TEXT: dict[Source, str] = {
    "engine": "the engine's API (container inspect)",
    "logs": "the container's logs",
    "exec": "a command run inside the container",
    "procfs": "this machine's kernel, reading the container's network namespace through its process",
    "helper": "a short-lived helper container sharing the container's network namespace",
    "host": "a probe from this machine",
    "peer": "a probe from inside the other container's network namespace",
    "none": "not gathered",
}

LookPath: TypeAlias = Literal["exec", "procfs", "helper", "none"]
"""How the diagnosis looked inside a container: its own tools, the host's /proc, or a helper."""

HELPER_IMAGE = LOCAL_BASE
"""The course image a helper container runs (python3 and cat, nothing else needed)."""


@dataclass(frozen=True)
class LearnerCommands:
    """The commands a learner types to see each piece of evidence, on their engine's CLI.

    ``program`` is ``docker`` or ``podman`` (both take the same arguments for everything here).
    ``cat`` and ``python`` say whether the container has those tools: where it does not,
    ``docker exec`` would fail for the learner too, so the command runs them in a helper
    container that shares the container's network namespace instead.
    """

    container: str
    program: str = "docker"
    cat: bool = True
    python: bool = True

    def _cmd(self, *words: str) -> str:
        return " ".join(shlex.quote(word) for word in (self.program, *words))

    def ps(self) -> str:
        return self._cmd("ps", "-a", "--filter", f"name={self.container}")

    def state(self) -> str:
        template = "{{.State.Status}} exit={{.State.ExitCode}} restarts={{.RestartCount}}"
        return self._cmd("inspect", "--format", template, self.container)

    def logs(self, tail: int = 20) -> str:
        return self._cmd("logs", "--tail", str(tail), self.container)

    def port(self) -> str:
        return self._cmd("port", self.container)

    def network(self) -> str:
        template = "{{.HostConfig.NetworkMode}} {{json .HostConfig.PortBindings}}"
        return self._cmd("inspect", "--format", template, self.container)

    def start(self) -> str:
        return self._cmd("start", self.container)

    def environment(self) -> str:
        return self._cmd("inspect", "--format", "{{json .Config.Env}}", self.container)

    def networks(self, *others: str) -> str:
        """Each container's networks and the names it answers to there (aliases)."""
        template = (
            "{{.Name}}:{{range $net, $v := .NetworkSettings.Networks}} {{$net}} {{json $v.Aliases}}{{end}}"
        )
        return self._cmd("inspect", "--format", template, self.container, *others)

    def _inside(self, *argv: str, own: bool) -> str:
        if own:
            return self._cmd("exec", self.container, *argv)
        # Works whatever the image holds: the helper brings the tools, the namespace is shared.
        return self._cmd("run", "--rm", "--network", f"container:{self.container}", HELPER_IMAGE, *argv)

    def listeners(self) -> str:
        return self._inside("cat", "/proc/net/tcp", "/proc/net/tcp6", own=self.cat)

    def request_inside(self, target: str, *, path: str = "/", expect: Expect = "http") -> str:
        """A request to ``target`` (``host:port``) from inside the container's network namespace."""
        host, _, port = target.rpartition(":")
        host = host.strip("[]")
        # Double quotes inside: the shell quoting around the whole program stays plain '...'.
        if expect == "tcp":
            code = (
                f"import socket; s = socket.create_connection(({json.dumps(host)}, {int(port)}), 3); "
                's.settimeout(1); print("connected; first bytes:", s.recv(200))'
            )
        else:
            url = json.dumps(f"http://{bracket_host(host)}:{port}{path}")
            code = (
                f"import urllib.request as u; r = u.urlopen({url}, timeout=3); print(r.status, r.read(200))"
            )
        return self._inside("python3", "-c", code, own=self.python)

    def request_from_peer(self, peer: str, target: str) -> str:
        """A TCP connection to ``target`` from inside ``peer``'s network namespace."""
        other = LearnerCommands(peer, self.program, cat=False, python=False)  # its tools are unknown
        return other.request_inside(target, expect="tcp")

    @staticmethod
    def request_from_host(url: str, *, expect: Expect = "http") -> str:
        """``curl -v`` from this machine; curl speaks plain TCP through ``telnet://``."""
        if expect == "tcp":
            target = url.split("://", 1)[-1].split("/", 1)[0]
            return f"curl -v --max-time 3 telnet://{target}"
        return f"curl -v --max-time 3 {shlex.quote(url)}"


def cli_program(kind: str) -> str:
    """The CLI a learner uses for an engine kind: ``podman`` for Podman, else ``docker``.

    The process engine speaks the Docker API, so the docker CLI pointed at it (DOCKER_HOST) works.
    """
    return "podman" if kind == "podman" else "docker"
