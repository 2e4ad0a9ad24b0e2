"""Gathering across containers: a peer meant to reach this one, a proxy's upstream, its own localhost.

Three questions of the multi-container world (lesson 07), each answered from evidence:

- **From a peer** (``portbinding diagnose DB --from API``): which networks the two share, the
  names this container answers to there, the names the peer's configuration uses for its port
  (``DATABASE_URL=redis://db:6379/0``) and what each does from inside the peer -- looked up with
  the peer's own resolver (its python3, or a helper that shares its resolv.conf), then connected.
- **Behind a proxy**: a 502/503/504 comes with a line in the proxy's log (nginx: ``connect()
  failed (111: Connection refused) while connecting to upstream``, ``api could not be resolved``).
  The upstream it names is looked for on the proxy's networks, and its own evidence gathered as
  seen from the proxy, so the classifier can say why it is down.
- **Its own localhost**: configuration that points at ``localhost:PORT`` where nothing listens
  inside -- localhost is the container itself -- and which neighbours offer that port instead.

Nothing here decides; :mod:`portbinding.diagnose.classify` does.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from docker.models.containers import Container

from portbinding.diagnose.evidence import InsideAnswer
from portbinding.diagnose.inside import Target, Via, examine, probe_by_name
from portbinding.diagnose.peerevidence import LocalRef, NameUse, PeerEvidence, UpstreamEvidence
from portbinding.engine import Engine
from portbinding.engine_errors import ENGINE_ERRORS
from portbinding.ports import bracket_host
from portbinding.procnet import Listener

LOGGER = logging.getLogger(__name__)

LOCALHOST_WORDS = ("localhost", "127.0.0.1", "[::1]")
# "redis://db:6379/0", "db:6379", "http://[fd00::2]:80": a host and a port inside a word.
_HOST_PORT = re.compile(r"(?:^|[=\s/@,;(\"'])(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9_.-]*):(\d{1,5})(?!\d)")
# DB_HOST=db, REDIS_HOSTNAME=cache: a bare host name in a variable that names one.
_HOST_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:HOST|HOSTNAME|SERVER)=([A-Za-z0-9][A-Za-z0-9_.-]*)$")
_COMPOSE_PROJECT = "com.docker.compose.project"
_COMPOSE_SERVICE = "com.docker.compose.service"
# nginx's words for an upstream it could not use, most specific first.
_UPSTREAM_ERRORS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*) could not be resolved"), "unresolved"),
    (re.compile(r"\(111: Connection refused\) while connecting to upstream"), "refused"),
    (re.compile(r"upstream timed out|\(110: Connection timed out\)|\(113: No route to host\)"), "timeout"),
    (re.compile(r"\(104: Connection reset by peer\)|upstream prematurely closed"), "reset"),
    (re.compile(r"no live upstreams|while connecting to upstream"), "other"),
)
_UPSTREAM_ADDRESS = re.compile(r'upstream: "[a-z]+://(\[[0-9A-Fa-f:.]+\]|[^:/"]+):(\d+)')
PROXY_STATUSES = (502, 503, 504)


# ------------------------------------------------------------------------------ words


def config_words(attrs: Mapping[str, Any]) -> list[str]:
    """A container's environment and command, word by word (where addresses are configured)."""
    config = attrs.get("Config") or {}
    return [
        *(str(item) for item in config.get("Env") or []),
        *(str(item) for item in config.get("Entrypoint") or []),
        *(str(item) for item in config.get("Cmd") or []),
    ]


def hosts_in(word: str) -> list[tuple[str, int | None]]:
    """Every ``host:port`` in a word (and a ``*_HOST=name`` variable's name, without a port)."""
    found: list[tuple[str, int | None]] = [
        (m.group(1).strip("[]"), int(m.group(2))) for m in _HOST_PORT.finditer(word)
    ]
    variable = _HOST_VARIABLE.match(word)
    if variable:
        found.append((variable.group(1), None))
    return found


def is_loopback_name(host: str) -> bool:
    return host == "localhost" or host.startswith("127.") or host == "::1"


def is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def compose_of(attrs: Mapping[str, Any]) -> tuple[str, str] | None:
    """(project, service) for a container Compose made (both front ends label it so)."""
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    project, service = labels.get(_COMPOSE_PROJECT), labels.get(_COMPOSE_SERVICE)
    return (str(project), str(service)) if project and service else None


def networks_of(attrs: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(((attrs.get("NetworkSettings") or {}).get("Networks") or {}).items())


def names_on(attrs: Mapping[str, Any], networks: Iterable[str]) -> tuple[str, ...]:
    """The names a container answers to on ``networks``: aliases (a Compose service name among
    them) first, then its own name; never the short id Docker adds as an alias."""
    ident = str(attrs.get("Id") or "")
    found: list[str] = []
    settings = networks_of(attrs)
    for network in networks:
        data = settings.get(network) or {}
        for alias in [*(data.get("Aliases") or []), *(data.get("DNSNames") or [])]:
            alias = str(alias)
            if alias and not (len(alias) >= 12 and ident.startswith(alias)):
                found.append(alias)
    found.append(str(attrs.get("Name") or "").lstrip("/"))
    compose = compose_of(attrs)
    if compose is not None and compose[1] in found:
        found.insert(
            0, compose[1]
        )  # Compose v2 lists the container's name first: the service is the name to use
    return tuple(dict.fromkeys(name for name in found if name))


def user_networks(attrs: Mapping[str, Any]) -> list[str]:
    """Its networks where names resolve: every one but Docker's default bridge (and host/none)."""
    return [name for name in networks_of(attrs) if name not in ("bridge", "host", "none", "podman")]


# ------------------------------------------------------------------------------ from a peer


def peer_evidence(
    engine: Engine,
    peer: Container | str,
    attrs: Mapping[str, Any],
    port: int | None,
    via: Via,
) -> tuple[PeerEvidence, tuple[str, ...]]:
    """What the peer sees of this container (``attrs``) on ``port``: networks, names, answers."""
    other = engine.get(peer) if isinstance(peer, str) else peer
    engine.state(other)  # fresh attrs
    mine, theirs = networks_of(attrs), networks_of(other.attrs)
    shared = tuple(name for name in user_networks(attrs) if name in theirs)
    addresses = {name: str((data or {}).get("IPAddress") or "") for name, data in mine.items()}
    # The address a name lookup gives on a shared network (the default bridge has no names, but
    # its addresses still connect): probed by address, so no resolver inside is needed.
    address = next((addresses[name] for name in shared if addresses.get(name)), None)
    if address is None:
        address = next((addresses[name] for name in mine if name in theirs and addresses.get(name)), None)
    words = config_words(other.attrs)
    mentions = tuple(word for word in words if any(local in word for local in LOCALHOST_WORDS))
    server_names = names_on(attrs, shared or user_networks(attrs))
    service = compose_of(other.attrs)
    base = PeerEvidence(
        name=str(other.name),
        networks=tuple(theirs),
        shared=shared,
        address=address,
        mentions_localhost=mentions,
        via_localhost=None,
        via_name=None,
        server_names=server_names,
        service=service[1] if service else None,
    )
    if port is None:
        return base, ()
    local = Target(f"127.0.0.1:{port}", "127.0.0.1", port)
    extra = [local] + ([Target(f"{bracket_host(address)}:{port}", address, port)] if address else [])
    seen = examine(engine, other, port=port, only_port=True, extra=extra, via=via)
    by_target: dict[str, InsideAnswer] = {answer.target: answer for answer in seen.answers}
    uses = _names_used(words, port)
    notes = [f"{other.name}: {note}" for note in seen.notes]
    if uses:
        targets = [Target(f"{use.name}:{port}", use.name, port) for use in uses]
        answers, more = probe_by_name(engine, other, targets, via=via)
        found = {answer.target: answer for answer in answers}
        uses = [NameUse(u.name, u.port, u.word, found.get(f"{u.name}:{port}")) for u in uses]
        notes.extend(f"{other.name}: {note}" for note in more)
    evidence = PeerEvidence(
        name=base.name,
        networks=base.networks,
        shared=shared,
        address=address,
        mentions_localhost=mentions,
        via_localhost=by_target.get(local.where),
        via_name=by_target.get(extra[1].where) if len(extra) > 1 else None,
        names_used=tuple(uses),
        server_names=server_names,
        service=base.service,
    )
    return evidence, tuple(notes)


def _names_used(words: list[str], port: int) -> list[NameUse]:
    """Host names (not addresses, not localhost) the words use for ``port``, first mention kept."""
    found: dict[str, NameUse] = {}
    for word in words:
        for host, number in hosts_in(word):
            if number not in (None, port) or is_loopback_name(host) or is_address(host):
                continue
            found.setdefault(host, NameUse(host, port, word))
    return list(found.values())


# ------------------------------------------------------------------------------ behind a proxy


def upstream_evidence(
    engine: Engine,
    proxy: Container,
    logs: list[str],
    gather_one: Callable[..., Any],
    via: Via,
) -> UpstreamEvidence | None:
    """The upstream a proxy's log blames for its last 502, and that upstream's own evidence."""
    found = _last_upstream_error(logs)
    if found is None:
        return None
    line, reason, name, address, port = found
    if port is None and name is not None:
        port = _port_for(name, config_words(proxy.attrs))
    target = f"{name or bracket_host(address or '?')}" + (f":{port}" if port else "")
    container = _find_upstream(engine, proxy, name=name, address=address)
    if container is None:
        return UpstreamEvidence(target, reason, line, port)  # type: ignore[arg-type]
    status = str(engine.state(container).get("Status", "unknown"))
    evidence = None
    try:
        if status == "running":
            evidence = gather_one(engine, container, container_port=port, peer=proxy, via=via)
        else:
            evidence = gather_one(engine, container, container_port=port, via=via)
    except ENGINE_ERRORS as exc:  # gone meanwhile: what the proxy said is still the evidence
        LOGGER.debug("could not gather %s behind %s: %s", container.name, proxy.name, exc)
    return UpstreamEvidence(target, reason, line, port, str(container.name), status, evidence)  # type: ignore[arg-type]


def proxy_status(answers: Iterable[InsideAnswer], host_status: int | None, port: int | None) -> int | None:
    """A proxy's "bad gateway" family status, seen from the host or inside on the port."""
    if host_status in PROXY_STATUSES:
        return host_status
    return next((a.status for a in answers if a.port == port and a.status in PROXY_STATUSES), None)


def _last_upstream_error(logs: list[str]) -> tuple[str, str, str | None, str | None, int | None] | None:
    for line in reversed(logs):
        for pattern, reason in _UPSTREAM_ERRORS:
            match = pattern.search(line)
            if match is None:
                continue
            name = match.groupdict().get("name")
            where = _UPSTREAM_ADDRESS.search(line)
            address = where.group(1).strip("[]") if where else None
            port = int(where.group(2)) if where else None
            if address is not None and not is_address(address):
                name, address = name or address, None
            return line.strip(), reason, name, address, port
    return None


def _port_for(name: str, words: list[str]) -> int | None:
    for word in words:
        for host, number in hosts_in(word):
            if host == name and number is not None:
                return number
    return None


def _find_upstream(
    engine: Engine, proxy: Container, *, name: str | None, address: str | None
) -> Container | None:
    """The container behind ``name`` or ``address`` on the proxy's user-defined networks, running or not."""
    for network in user_networks(proxy.attrs):
        try:
            candidates = engine.client.containers.list(all=True, filters={"network": network})
        except ENGINE_ERRORS:
            continue
        for candidate in candidates:
            if candidate.id == proxy.id:
                continue
            settings = networks_of(candidate.attrs).get(network) or {}
            if address is not None and settings.get("IPAddress") == address:
                return candidate
            if name is not None and name in names_on(candidate.attrs, [network]):
                return candidate
    return None


# ------------------------------------------------------------------------------ its own localhost


def local_refs(engine: Engine, target: Container, listeners: Iterable[Listener]) -> tuple[LocalRef, ...]:
    """Its configuration's ``localhost:PORT`` words where nothing listens on PORT inside it."""
    listening = {item.port for item in listeners}
    found: list[LocalRef] = []
    for word in config_words(target.attrs):
        for host, port in hosts_in(word):
            if port is None or not is_loopback_name(host) or port in listening:
                continue
            found.append(LocalRef(word, port, False, _offering(engine, target, port)))
    return tuple(found)


def _offering(engine: Engine, target: Container, port: int) -> tuple[str, ...]:
    """Neighbours on its user-defined networks that expose or publish ``port``, by the name to use."""
    names: list[str] = []
    for network in user_networks(target.attrs):
        try:
            neighbours = engine.client.containers.list(filters={"network": network})
        except ENGINE_ERRORS:
            continue
        for other in neighbours:
            exposed = (other.attrs.get("Config") or {}).get("ExposedPorts") or {}
            if other.id != target.id and f"{port}/tcp" in exposed:
                names.append(names_on(other.attrs, [network])[0])
    return tuple(dict.fromkeys(names))
