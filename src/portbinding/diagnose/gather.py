"""Collecting: every rung's evidence about one container port, from the engine and from inside.

``gather()`` asks the engine (state, logs, published ports, network settings), looks inside the
container's network namespace (see :mod:`portbinding.diagnose.inside` for the three ways in),
and probes from this machine -- over HTTP, or for a service that does not speak HTTP with a TCP
connection that must get data or stay open (a proxy with nothing behind it hangs up at once).
With ``peer=`` it also looks from the container that is meant to reach this one; a proxy's
502 brings in the upstream its log names, and configuration pointing at its own localhost is
noted (:mod:`portbinding.diagnose.neighbours`). It decides nothing:
:func:`portbinding.diagnose.classify.classify` does.
"""

from __future__ import annotations

import dataclasses
import errno
import socket
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import docker.errors
import requests.exceptions
from docker.models.containers import Container

from portbinding.diagnose import neighbours
from portbinding.diagnose.evidence import Evidence, HostProbe, PortOrigin
from portbinding.diagnose.facts import expected_service
from portbinding.diagnose.inside import Inside, Via, examine
from portbinding.diagnose.ladder import Expect, Source
from portbinding.diagnose.peerevidence import LocalRef
from portbinding.diagnose.runline import run_line_from_container
from portbinding.engine import Engine, PublishedPort, free_port
from portbinding.ports import PortMapping, bracket_host, from_bindings
from portbinding.probe import ProbeResult, probe_http, probe_tcp

HOST_TIMEOUT_S = 2.0
# How long a TCP connection through the published port must stay open (or get data) to count:
# docker-proxy hangs up within a millisecond or two when nothing answers behind it.
TCP_HOLD_S = 0.3
LOG_LINES = 40


def gather(
    engine: Engine,
    container: Container | str,
    *,
    container_port: int | None = None,
    expect: Expect | None = None,
    path: str = "/",
    peer: Container | str | None = None,
    via: Via = "auto",
    probe: Callable[[str], ProbeResult] | None = None,
) -> Evidence:
    """Everything observable about ``container``'s port, rung by rung, with its provenance.

    ``container_port`` defaults to the first published port, then one asked for with ``-p``,
    then the first exposed one, then what listens inside. ``expect`` picks the host probe (TCP
    for ``tcp``, else HTTP GET ``path``); left out, it is inferred from what answers inside.
    ``peer`` is a container meant to reach this one: what it gets at ``localhost`` and at this
    container's address is gathered too. ``via`` forces one way of looking inside (tests, bench).
    """
    target = engine.get(container) if isinstance(container, str) else container
    state = engine.state(target)
    attrs = target.attrs
    status = str(state.get("Status", "unknown"))
    running = status == "running"
    logs = engine.logs(target, tail=LOG_LINES).splitlines()
    # A paused container keeps its ports published (docker port lists them); a stopped one has none.
    ports = engine.ports(target) if running or status == "paused" else []
    requested = _requested(attrs)
    networks = _networks(attrs)
    network_mode = str((attrs.get("HostConfig") or {}).get("NetworkMode") or "default")
    forwarded_to = _forwarded_address(network_mode, networks, attrs)
    origin: PortOrigin = "asked"
    port = container_port
    if port is None:
        port, origin = _default_port(attrs, ports, requested)
    notes: list[str] = []
    inside = Inside((), (), "none", "none", "none")
    if running:
        inside = examine(
            engine,
            target,
            port=port,
            # The process engine's addresses are its own (see process/netview.py): its listeners
            # already say everything the forwarded probe would.
            forwarded=forwarded_to if engine.info.kind != "process" else None,
            only_port=network_mode == "host",
            via=via,
        )
        notes.extend(inside.notes)
        if network_mode == "host" and port is not None:
            # The host's own table: every service of this machine, none of them the question.
            mine = tuple(item for item in inside.listeners if item.port == port)
            inside = dataclasses.replace(inside, listeners=mine)
            notes.append(f"it shares the host's network: only the host's listeners on port {port} are shown")
        if port is None and network_mode == "host":
            # The host's own table: which listener is the container's cannot be told from it.
            inside = dataclasses.replace(inside, listeners=(), answers=())
            notes.append(
                "it shares the host's network: every listener of this machine is in its table, so none is "
                "shown until you name the port (--port)"
            )
        elif port is None:
            outside = [item for item in inside.listeners if not item.is_loopback] or list(inside.listeners)
            if outside:
                port, origin = outside[0].port, "listening"
    peer_evidence = (
        neighbours.peer_evidence(engine, peer, attrs, port, via) if peer is not None and running else None
    )
    if peer_evidence is not None:
        notes.extend(peer_evidence[1])
    wanted = expected_service(expect, inside.answers, port)
    host: HostProbe | None = None
    url: str | None = None
    if running and port is not None and peer is None:
        url = _host_url(engine, target, port, path, network_mode, ports)
        if url is not None:
            host = _probe_host(url, wanted, probe)
    remote = engine.info.url.startswith(("tcp://", "ssh://", "http://", "https://"))
    taken = {} if remote else _taken_host_ports(port, requested, ports)
    upstream = None
    refs: tuple[LocalRef, ...] = ()
    if host is not None:
        if neighbours.proxy_status(inside.answers, host.result.http_status, port) is not None:
            upstream = neighbours.upstream_evidence(engine, target, logs, gather, via)
        refs = neighbours.local_refs(engine, target, inside.listeners)
    provenance: dict[str, Source] = {
        "state": "engine",
        "logs": "logs",
        "published": "engine",
        "listeners": inside.sockets_from,
        "inside": inside.answers_from,
        "host": "host" if host is not None else "none",
    }
    if peer_evidence is not None:
        provenance["peer"] = "peer"
    if upstream is not None:
        provenance["upstream"] = "logs"
    return Evidence(
        container=str(target.name),
        image=str((attrs.get("Config") or {}).get("Image", "")),
        status=status,
        exit_code=None if running else int(state.get("ExitCode", 0)),
        health=(state.get("Health") or {}).get("Status"),
        running_for_s=running_for(state),
        log_tail=logs,
        container_port=port,
        port_origin=origin if port is not None else "none",
        engine_kind=engine.info.kind,
        engine_remote=remote,
        publish_host=engine.publish_host,
        oom_killed=bool(state.get("OOMKilled")),
        restart_policy=str(((attrs.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name") or ""),
        restart_count=int(attrs.get("RestartCount") or 0),
        network_mode=network_mode,
        networks=networks,
        forwarded_to=forwarded_to,
        requested=requested,
        ports=tuple(ports),
        sockets=inside.listeners,
        answers=inside.answers,
        host=host,
        host_url=url,
        peer=peer_evidence[0] if peer_evidence else None,
        upstream=upstream,
        compose=neighbours.compose_of(attrs),
        local_refs=refs,
        run=run_line_from_container(attrs, image_config=_image_config(engine, attrs)),
        look=inside.look,
        tools=inside.tools,
        provenance=provenance,
        notes=notes,
        path=path,
        taken=taken,
    )


# ------------------------------------------------------------------------------ the engine's view


def running_for(state: Mapping[str, object]) -> float | None:
    """Seconds since the container (last) started, or None if it never did."""
    started = str(state.get("StartedAt") or "")
    if not started or started.startswith("0001"):
        return None
    try:
        moment = datetime.fromisoformat(started[:26].rstrip("Z") + "+00:00")
    except ValueError:
        return None
    return max(0.0, (datetime.now(UTC) - moment).total_seconds())


def _requested(attrs: dict[str, Any]) -> tuple[PortMapping, ...]:
    """The -p options as given (kept by the engine even where they are ignored: --network host)."""
    return tuple(from_bindings((attrs.get("HostConfig") or {}).get("PortBindings") or {}))


def _networks(attrs: dict[str, Any]) -> dict[str, str]:
    settings = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    return {str(name): str((data or {}).get("IPAddress") or "") for name, data in settings.items()}


def _forwarded_address(network_mode: str, networks: dict[str, str], attrs: dict[str, Any]) -> str | None:
    """The container address published traffic is forwarded to (docker-proxy's -container-ip).

    Docker forwards to the container's address on the network it was created on
    (HostConfig.NetworkMode; "default" is the bridge), not on networks connected later.
    """
    if network_mode == "host" or network_mode.startswith("container:"):
        return None
    name = "bridge" if network_mode == "default" else network_mode
    address = networks.get(name) or str((attrs.get("NetworkSettings") or {}).get("IPAddress") or "")
    if not address:
        address = next((ip for ip in networks.values() if ip), "")
    return address or None


def _default_port(
    attrs: dict[str, Any], published: list[PublishedPort], requested: tuple[PortMapping, ...]
) -> tuple[int | None, PortOrigin]:
    tcp = [p.container_port for p in published if p.protocol == "tcp"]
    if tcp:
        return tcp[0], "published"
    asked = [m.container_port for m in requested if m.protocol == "tcp"]
    if asked:
        return asked[0], "requested"
    config = attrs.get("Config") or {}
    exposed = config.get("ExposedPorts") if isinstance(config, dict) else None
    for key in sorted(exposed or {}):
        number, _, protocol = key.partition("/")
        if protocol in ("", "tcp"):
            return int(number), "exposed"
    return None, "none"


def _taken_host_ports(
    port: int | None, requested: tuple[PortMapping, ...], ports: list[PublishedPort]
) -> dict[int, int]:
    """Host ports a fix would publish on (the -p given, or the container port itself) that something
    else holds now, each with a free one; the container's own published ports are its to reuse."""
    own = {p.host_port for p in ports}
    wanted = {m.host_port for m in requested if m.host_port} | ({port} if port is not None else set())
    return {candidate: free_port() for candidate in sorted(wanted - own) if _held(candidate)}


def _held(port: int) -> bool:
    """Something listens on this machine's ``port`` (only "in use" counts: a port below 1024 that a
    non-root user may not bind is not taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def _image_config(engine: Engine, attrs: dict[str, Any]) -> dict[str, Any]:
    image = (attrs.get("Config") or {}).get("Image")
    try:
        found = engine.client.images.get(str(image))
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        return {}  # an image removed since: everything counts as set on the run line
    return dict(found.attrs.get("Config") or {})


# ------------------------------------------------------------------------------ from the host


def _host_url(
    engine: Engine, target: Container, port: int, path: str, network_mode: str, ports: list[PublishedPort]
) -> str | None:
    if network_mode == "host":
        # No mapping: the server is on the engine machine's own port.
        return f"http://{bracket_host(engine.publish_host)}:{port}{path}"
    if not any(p.container_port == port and p.protocol == "tcp" for p in ports):
        return None
    return engine.url(target, port, path)


def _probe_host(url: str, wanted: Expect, probe: Callable[[str], ProbeResult] | None) -> HostProbe:
    if wanted == "tcp":
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        return HostProbe("tcp", probe_tcp(host, port, timeout=HOST_TIMEOUT_S, hold=TCP_HOLD_S))
    return HostProbe("http", (probe or _http)(url))


def _http(url: str) -> ProbeResult:
    return probe_http(url, timeout=HOST_TIMEOUT_S)
