"""The fixes between containers: a name for localhost, a shared network, the right name, the upstream.

Each starts from what the evidence shows: the very word the other container's configuration
uses (``DATABASE_URL=redis://localhost:6379/0``) comes back changed only where it must be
(``redis://db:6379/0``); networks are named as the engine lists them; a container Compose made
gets the fix in its Compose file's words. Lesson 07 teaches each of these.
"""

from __future__ import annotations

import re

from portbinding.diagnose.diagnosis import Diagnosis, Fix
from portbinding.diagnose.evidence import Evidence
from portbinding.diagnose.fixes import with_line
from portbinding.diagnose.peerevidence import LocalRef, NameUse, UpstreamEvidence

SHARED_NETWORK = "appnet"  # the name a fix creates when neither container has a user-defined network
_LOCAL = re.compile(r"(?<![\w.-])(?:localhost|127\.\d+\.\d+\.\d+|\[::1\])(?=:\d)")


def swap_host(word: str, old: str, new: str) -> str:
    """``word`` with host ``old`` (before ``:PORT``, or a bare ``*_HOST=old``) replaced by ``new``."""
    if old == "localhost":
        return _LOCAL.sub(new, word)
    pattern = re.compile(rf"(?<![\w.-]){re.escape(old)}(?=:\d|$)")
    return pattern.sub(new, word)


def _compose_words(service: str | None, changes: list[str]) -> str:
    if not service:
        return ""
    lines = "; ".join(changes)
    return (
        f" Compose made it: in the Compose file, under services: {service}: environment:, write {lines}; "
        f"then `docker compose up -d {service}` recreates it."
    )


def peer_localhost(ev: Evidence, port: int) -> Fix:
    """The peer points at localhost: the same words with this container's name instead."""
    peer = ev.peer
    assert peer is not None
    name = peer.best_name(ev.container)
    changes = [swap_host(word, "localhost", name) for word in peer.mentions_localhost if _LOCAL.search(word)]
    change = ", ".join(changes) or f"http://{name}:{port} instead of http://localhost:{port}"
    summary = (
        f"Inside {peer.name}, localhost is {peer.name} itself. Connect to {name}:{port} instead: on a "
        "user-defined network, containers find each other by name." + _compose_words(peer.service, changes)
    )
    if peer.shared:
        return Fix(summary, config_change=change)
    return Fix(
        summary + " They share no user-defined network yet (the default bridge has no names): create one "
        "and connect both.",
        config_change=change,
        commands=_join_commands(ev),
    )


def not_same_network(ev: Evidence) -> Fix:
    peer = ev.peer
    assert peer is not None
    mine = [name for name in ev.networks if name not in ("bridge", "host", "none")]
    where = ", ".join(mine) if mine else "only Docker's default bridge"
    summary = (
        f"{ev.container} is on {where}; {peer.name} is on {', '.join(peer.networks) or 'no network'}. "
        "Containers reach each other only across a network they share, and names resolve only on "
        "user-defined networks (never on the default bridge)."
    )
    if ev.compose and peer.service:
        summary += (
            " Both come from Compose: services of one Compose file share its default network; across "
            "two files, declare the other's network under networks: with external: true."
        )
    name = peer.best_name(ev.container)
    return Fix(
        summary + f" Then {peer.name} reaches it as {name}:{ev.container_port}.",
        commands=_join_commands(ev),
    )


def name_unresolved(ev: Evidence, use: NameUse) -> Fix:
    peer = ev.peer
    assert peer is not None
    name = peer.best_name(ev.container)
    changed = swap_host(use.word, use.name, name)
    known = ", ".join(peer.server_names) or ev.container
    summary = (
        f"{peer.name} asks for {use.name!r} ({use.word}), and on {', '.join(peer.shared)} no container "
        f"answers to that name: {ev.container} answers to {known}. Use {name}."
        + _compose_words(peer.service, [changed])
    )
    return Fix(summary, config_change=changed)


def calls_localhost(ev: Evidence, ref: LocalRef) -> Fix:
    """Its own configuration points at localhost:PORT, where nothing listens inside it."""
    name = ref.candidates[0] if ref.candidates else "THE_OTHER_CONTAINER"
    changed = swap_host(ref.word, "localhost", name)
    offered = (
        f" On its network, {', '.join(ref.candidates)} offers port {ref.port}."
        if ref.candidates
        else f" Put the container that serves port {ref.port} on a user-defined network with this one, and "
        "use its name."
    )
    summary = (
        f"{ev.container} is configured with {ref.word}, but inside {ev.container} localhost is "
        f"{ev.container} itself, and nothing listens on port {ref.port} there.{offered}"
    ) + _compose_words(ev.compose[1] if ev.compose else None, [changed])
    key, _, _ = ref.word.partition("=")
    line = ev.run
    if line is not None and ref.candidates and any(k == key for k, _ in line.spec.env):
        env = tuple((k, changed.partition("=")[2] if k == key else v) for k, v in line.spec.env)
        fixed = line.with_spec(env=env)
        if line.network:
            return with_line(ev, fixed, summary, config_change=changed)
    return Fix(summary, config_change=changed)


def upstream_down(ev: Evidence, upstream: UpstreamEvidence, behind: Diagnosis | None) -> Fix:
    """A 502: say what the proxy met, then the fix the upstream's own diagnosis gives."""
    said = {
        "refused": "refuses the proxy's connections",
        "unresolved": "does not resolve from the proxy",
        "timeout": "does not answer the proxy in time",
        "reset": "drops the proxy's connections",
        "other": "cannot be used by the proxy",
    }[upstream.reason]
    head = f"The proxy {ev.container} is up, but its upstream {upstream.target} {said}."
    name = upstream.target.rpartition(":")[0] or upstream.target
    if upstream.container is None:
        mine = [n for n in ev.networks if n not in ("bridge", "host", "none")]
        network = mine[0] if mine else "NETWORK"
        return Fix(
            f"{head} No container answers to {name} on {', '.join(mine) or 'its network'}: start the service "
            f"there with that name (--network {network} --name {name}, or --network-alias {name}), or "
            "connect a running one.",
            commands=(f"{ev.commands().program} network connect --alias {name} {network} CONTAINER",),
        )
    if behind is None:
        return Fix(
            f"{head} Look at {upstream.container} itself: `portbinding diagnose {upstream.container}`."
        )
    fix = behind.fix
    return Fix(
        f"{head} Behind it, {upstream.container}: {behind.summary} {fix.summary}",
        run=fix.run,
        config_change=fix.config_change,
        line=fix.line,
        commands=fix.commands,
    )


def _join_commands(ev: Evidence) -> tuple[str, ...]:
    """Connect the peer to this container's user-defined network, or make one for both."""
    peer = ev.peer
    assert peer is not None
    program = ev.commands().program
    mine = [name for name in ev.networks if name not in ("bridge", "host", "none")]
    if mine:
        return (f"{program} network connect {mine[0]} {peer.name}",)
    return (
        f"{program} network create {SHARED_NETWORK}",
        f"{program} network connect {SHARED_NETWORK} {ev.container}",
        f"{program} network connect {SHARED_NETWORK} {peer.name}",
    )
