"""Deciding: from :class:`Evidence` to a :class:`Diagnosis`, with no I/O at all.

The rules run in ladder order -- container state, published ports, what listens inside and
where, what answers inside, what answers from the host -- and the first that matches decides.
Each rule is a named function in :data:`RULES`; ``Diagnosis.rule`` says which one fired, and the
unit table (tests/unit/test_classify.py) has a row for every rule.

Reachability is judged from the evidence, not from the symptom (DESIGN.md section 3): a reset
and a refusal from the host can mean the same mistake seen through different paths (docker-proxy
resets on loopback, DNAT refuses; with ``--userland-proxy=false`` loopback refuses too), so a
cause is read from what listens inside and what answers there.

Services that do not speak HTTP: what to expect is asked (``jupyter``/``http``/``tcp``) or
inferred from what answers inside on the port -- Jupyter if ``GET /api`` gets its version, HTTP
if the reply is HTTP, else TCP. A TCP service is judged reachable when the inside shows a
listener on an address forwarded traffic reaches, a connection there is accepted, AND the
connection from the host through the published port gets data or stays open for a moment
(``probe_tcp(hold=...)``). A bare connect is not enough: docker-proxy accepts every connection
on the host port and hangs up at once when nothing answers behind it, so the hang-up is the
tell. ``wrong_service`` is only said when what answers clearly is not what was expected (a
non-HTTP reply where HTTP was asked, HTTP that is not Jupyter); silence is not proof.
"""

from __future__ import annotations

import re
from dataclasses import replace

from portbinding.diagnose import fixes, peerfixes
from portbinding.diagnose.diagnosis import Diagnosis, Fix
from portbinding.diagnose.evidence import Evidence
from portbinding.diagnose.facts import Facts, Rule, clearly_not, facts_of
from portbinding.diagnose.ladder import Expect
from portbinding.diagnose.neighbours import proxy_status
from portbinding.diagnose.peerrules import (
    calls_localhost,
    name_unresolved,
    not_same_network,
    peer_localhost,
    peer_reaches,
)
from portbinding.procnet import Listener

CRASH_LOOP_WINDOW_S = 10.0  # up for less than this after a restart: still inside the loop
STARTING_GRACE_S = 5.0  # nothing on the port this early, and nothing serving anywhere: still starting
_STOP_SIGNALS = (130, 137, 143)  # SIGINT, SIGKILL, SIGTERM: what docker stop / kill / Ctrl-C leave
_STOP_REQUEST = re.compile(
    r"signal 15|signal 2\b|SIGTERM|SIGINT|received signal|shutdown request", re.IGNORECASE
)


def classify(evidence: Evidence, expect: Expect | None = None) -> Diagnosis:
    """The cause, its fix and the rule that decided, from ``evidence`` alone."""
    facts = facts_of(evidence, expect)
    for rule in RULES:
        found = rule(facts)
        if found is not None:
            return _never_the_running_line(found)
    raise AssertionError("the last rule always decides")  # pragma: no cover


# ------------------------------------------------------------------------------ rung 1: state


def crash_loop(f: Facts) -> Diagnosis | None:
    ev = f.ev
    looping = ev.status == "restarting" or (
        ev.running
        and ev.restart_count > 0
        and ev.running_for_s is not None
        and ev.running_for_s < CRASH_LOOP_WINDOW_S
        and not any(not item.is_loopback for item in f.on_port)
    )
    return f.diagnosis("crash_loop", fixes.crash(ev, loop=True), "crash_loop") if looping else None


def stopped(f: Facts) -> Diagnosis | None:
    """Stopped from outside: killed by a stop signal, or a server that shut down cleanly when asked."""
    ev = f.ev
    ended = ev.status in ("exited", "dead") and not ev.oom_killed
    by_signal = ended and ev.exit_code in _STOP_SIGNALS
    # Servers that handle SIGTERM (Jupyter, nginx, postgres) exit 0 and say so in their log.
    asked = ended and ev.exit_code == 0 and any(_STOP_REQUEST.search(line) for line in ev.log_tail[-8:])
    if ev.status in ("created", "paused") or by_signal or asked:
        return f.diagnosis("stopped", fixes.stopped(ev), "stopped")
    return None


def crashed(f: Facts) -> Diagnosis | None:
    return None if f.ev.running else f.diagnosis("crashed", fixes.crash(f.ev), "crashed")


# ------------------------------------------------------------------------------ rung 2: published


def no_port(f: Facts) -> Diagnosis | None:
    if f.port is not None:
        return None
    if f.host_mode:
        # Its listeners are this machine's: which one is the container's cannot be told from them.
        return f.diagnosis("host_network", fixes.host_port_unknown(f.ev), "host_port_unknown")
    first = _first_port(f.ev.sockets)
    return f.diagnosis("not_published", fixes.publish(f.ev, f.good_port or first), "no_port")


def host_network(f: Facts) -> Diagnosis | None:
    if not f.host_mode or f.port is None:
        return None
    moved = [m for m in f.ev.requested if m.host_port and m.host_port != m.container_port]
    if not moved:
        return None  # -p with the same number on both sides, or none: port P is where it always was
    return f.diagnosis("host_network", fixes.host_network(f.ev, f.port), "host_network")


def unusable_host_address(f: Facts) -> Diagnosis | None:
    ev = f.ev
    if f.host_mode or f.port is None or not f.mapped or not ev.engine_remote or ev.peer is not None:
        return None
    if all(_is_loopback(p.host_ip) for p in f.mapped):
        return f.diagnosis(
            "unusable_host_address", fixes.unusable_address(ev, f.port), "unusable_host_address"
        )
    return None


def published_elsewhere(f: Facts) -> Diagnosis | None:
    """-p points at a container port nothing listens on, while the app listens on this one."""
    ev = f.ev
    if f.host_mode or f.mapped or f.port is None or ev.peer is not None:
        return None
    others = {p.container_port for p in ev.ports if p.protocol == "tcp"}
    if not others or any(item.port in others for item in ev.sockets):
        return None
    if not any(not item.is_loopback for item in f.on_port):
        return None
    wrong = sorted(others)[0]
    return f.diagnosis("wrong_container_port", fixes.remap(ev, wrong, f.port), "published_elsewhere")


def asked_port_unused(f: Facts) -> Diagnosis | None:
    """The port asked about has nothing on it; the app is on another port that is already published."""
    ev = f.ev
    if f.host_mode or f.mapped or f.on_port or ev.port_origin != "asked" or f.port is None:
        return None
    published = {p.container_port for p in ev.ports if p.protocol == "tcp"}
    actual = next(
        (item.port for item in ev.sockets if item.port in published and not item.is_loopback),
        None,
    )
    if actual is None:
        return None
    return f.diagnosis("wrong_container_port", fixes.use_port(ev, f.port, actual), "asked_port_unused")


def not_published(f: Facts) -> Diagnosis | None:
    if f.host_mode or f.mapped or f.ev.peer is not None:
        return None
    port = f.port if f.on_port or f.good_port is None else f.good_port
    notes = _next_rung_notes(f)
    return f.diagnosis("not_published", fixes.publish(f.ev, port), "not_published", *notes)


# ------------------------------------------------------------------------------ rung 3: listening


def nothing_listens(f: Facts) -> Diagnosis | None:
    if f.ev.sockets or f.ev.look == "none":
        return None
    return f.diagnosis("still_starting", fixes.starting(f.ev), "nothing_listens")


def port_retried(f: Facts) -> Diagnosis | None:
    """The log says the port was taken and it moved; it listens on another port now.

    Where it moved is where the expected service answers, or else (a server too busy to answer
    the probe in time) the other port it listens on that nothing contradicts.
    """
    if f.retried_from is None or f.port is None:
        return None
    moved = f.good_port if f.good_port != f.port else None
    if moved is None:
        contradicted = {a.port for a in f.ev.answers if clearly_not(a, f.wanted)}
        moved = next(
            (
                item.port
                for item in f.ev.sockets
                if item.port not in (f.port, f.retried_from)
                and not item.is_loopback
                and item.port not in contradicted
            ),
            None,
        )
    if moved is None:
        return None
    return f.diagnosis("port_retried", fixes.retried(f.ev, f.port, moved, f.retried_from), "port_retried")


def nothing_on_port(f: Facts) -> Diagnosis | None:
    if f.on_port or f.ev.look == "none" or f.port is None:
        return None
    ev = f.ev
    if f.good_port is None and ev.running_for_s is not None and ev.running_for_s < STARTING_GRACE_S:
        return f.diagnosis("still_starting", fixes.starting(ev), "nothing_on_port_yet")
    actual = f.good_port or _first_port(ev.sockets, outside=True)
    return f.diagnosis("wrong_container_port", fixes.remap(ev, f.port, actual), "nothing_on_port")


def loopback_only(f: Facts) -> Diagnosis | None:
    if not f.on_port or not all(item.is_loopback for item in f.on_port):
        return None
    if f.host_mode and not f.ev.engine_remote and f.ev.peer is None:
        return None  # the host's own loopback: this machine reaches it
    address = f.on_port[0].address
    return f.diagnosis("loopback_only", fixes.rebind(f.ev, address, f.wanted), "loopback_only")


def wrong_address(f: Facts) -> Diagnosis | None:
    """Bound to one specific address that is not the one forwarded traffic arrives on."""
    ev = f.ev
    # Between containers, traffic arrives on the address the other one finds by name.
    arrives = ev.peer.address if ev.peer is not None else ev.forwarded_to
    if f.host_mode or not f.on_port or arrives is None:
        return None
    outside = [item for item in f.on_port if not item.is_loopback]
    if any(item.is_wildcard or _same_address(item.address, arrives) for item in outside):
        return None
    specific = [item for item in outside if item.family == "ipv4" or "." in item.address]
    if not specific:
        return None  # IPv6-only: the next rule
    return f.diagnosis("wrong_address", fixes.rebind(ev, specific[0].address, f.wanted), "wrong_address")


def ipv6_only(f: Facts) -> Diagnosis | None:
    """Listeners on the port are IPv6 only, and what the engine forwards (IPv4) is refused."""
    outside = [item for item in f.on_port if not item.is_loopback]
    if not outside or f.host_mode or any(item.family == "ipv4" or "." in item.address for item in outside):
        return None
    specific = [item for item in outside if not item.is_wildcard]
    if specific:
        return f.diagnosis("ipv6_only", fixes.ipv6_only(f.ev, specific[0].address), "ipv6_only")
    # "::" is dual-stack unless the server asked for IPV6_V6ONLY: only a probe over IPv4 tells.
    v4 = [a for a in f.ev.answers if a.port == f.port and "." in a.target and not a.target.startswith("[")]
    if v4 and not any(a.accepted for a in v4) and any(a.accepted for a in f.ev.answers if a.port == f.port):
        return f.diagnosis("ipv6_only", fixes.ipv6_only(f.ev, "::"), "ipv6_only_wildcard")
    return None


# ------------------------------------------------------------------------------ rung 4: inside


def wrong_service(f: Facts) -> Diagnosis | None:
    answer = f.port_answer
    if answer is None or f.port is None or not clearly_not(answer, f.wanted):
        return None
    if f.good_port is not None and f.good_port != f.port:
        fix = fixes.remap(f.ev, f.port, f.good_port, reason="wrong_service")
    else:
        fix = fixes.other_service(f.ev, f.port, f.wanted)
    return f.diagnosis("wrong_service", fix, "wrong_service")


def upstream_down(f: Facts) -> Diagnosis | None:
    """A proxy answers 502/503/504 and its log names the upstream it could not use."""
    ev, upstream = f.ev, f.ev.upstream
    host_status = ev.host.result.http_status if ev.host is not None else None
    if upstream is None or proxy_status(ev.answers, host_status, f.port) is None:
        return None
    behind = classify(upstream.evidence) if upstream.evidence is not None else None
    notes = [f"behind the proxy: {behind.cause} ({behind.rule})"] if behind is not None else []
    return f.diagnosis(
        "upstream_down", peerfixes.upstream_down(ev, upstream, behind), "upstream_down", *notes
    )


# ------------------------------------------------------------------------------ rung 5: host


def reachable(f: Facts) -> Diagnosis | None:
    host = f.ev.host
    if host is None or not host.reachable:
        return None
    notes: list[str] = []
    if f.wanted == "tcp":
        notes.append(
            "what answers is not HTTP: a plain TCP service. It accepts through the published port and keeps "
            "the connection (a browser or curl http:// will not show it; use its own client)."
        )
    if f.host_mode:
        notes.append("the container shares the host's network (--network host): no publishing is involved")
    if f.ev.health == "unhealthy":
        health = f"docker inspect --format '{{{{json .State.Health}}}}' {f.ev.container}"
        notes.append(
            "Docker calls it unhealthy, yet it answers here: its own HEALTHCHECK is what fails (a wrong "
            f"port or path in it?): `{health}` shows its runs"
        )
    for dead in {p.container_port: p for p in f.ev.dead_ends()}.values():  # one note per container port
        port = dead.container_port
        notes.append(
            f"container port {port} is published too (host port {dead.host_port}), but nothing listens on "
            f"it where forwarded traffic arrives: `portbinding diagnose {f.ev.container} --port {port}`"
        )
    return f.diagnosis("ok", fixes.nothing_to_fix(f.ev), "reachable", *notes)


def unreachable_otherwise(f: Facts) -> Diagnosis:
    """Listening where forwarded traffic arrives, answering inside, yet not from the host."""
    notes = []
    if f.ev.look == "none":
        notes.append("the inside could not be examined, so this is read from the outside alone")
    if f.ev.running_for_s is not None and f.ev.running_for_s > 60:
        notes.append("it has been up a while: something between may drop the traffic (a firewall)")
    return f.diagnosis("still_starting", fixes.starting(f.ev), "unreachable_otherwise", *notes)


RULES: tuple[Rule, ...] = (
    crash_loop,
    stopped,
    crashed,
    no_port,
    host_network,
    unusable_host_address,
    published_elsewhere,
    asked_port_unused,
    not_published,
    nothing_listens,
    port_retried,
    nothing_on_port,
    loopback_only,
    wrong_address,
    ipv6_only,
    wrong_service,
    upstream_down,
    peer_localhost,
    not_same_network,
    name_unresolved,
    peer_reaches,
    calls_localhost,
    reachable,
    unreachable_otherwise,
)
"""The rules in ladder order; the first that returns a Diagnosis decides."""

RULE_NAMES: tuple[str, ...] = (
    "crash_loop", "stopped", "crashed", "no_port", "host_port_unknown", "host_network",
    "unusable_host_address", "published_elsewhere", "asked_port_unused", "not_published", "nothing_listens",
    "port_retried",
    "nothing_on_port_yet", "nothing_on_port", "loopback_only", "wrong_address", "ipv6_only",
    "ipv6_only_wildcard", "wrong_service", "upstream_down", "peer_localhost", "not_same_network",
    "name_unresolved", "peer_reaches", "calls_localhost", "reachable", "unreachable_otherwise",
)  # fmt: skip
"""Every name ``Diagnosis.rule`` can take (a rule may decide in more than one way)."""


# ------------------------------------------------------------------------------ helpers


def _never_the_running_line(found: Diagnosis) -> Diagnosis:
    """A fix that would run the very line already running is no fix: drop the line, keep the words."""
    ev, fix = found.evidence, found.fix
    if found.cause in ("ok", "still_starting") or ev.run is None or not fix.commands:
        return found
    running = ev.run.to_cli(program=ev.commands().program)
    if fix.line != running:
        return found
    kept = Fix(
        fix.summary, config_change=fix.config_change or "see above: the run line itself is already right"
    )
    return replace(found, fix=kept)


def _next_rung_notes(f: Facts) -> list[str]:
    if f.on_port and all(item.is_loopback for item in f.on_port):
        return [
            f"once published, the next rung breaks too: it listens on {f.on_port[0]} only, which forwarded "
            "traffic cannot reach"
        ]
    return []


def _first_port(listeners: tuple[Listener, ...], *, outside: bool = False) -> int | None:
    pool = [item for item in listeners if not (outside and item.is_loopback)] or list(listeners)
    return pool[0].port if pool else None


def _is_loopback(address: str) -> bool:
    return address.startswith("127.") or address in ("::1", "localhost")


def _same_address(listener: str, address: str) -> bool:
    return listener.removeprefix("::ffff:") == address.removeprefix("::ffff:")
