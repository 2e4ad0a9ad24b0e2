"""The rules between containers (rung 5, seen from the other container), in the order they run.

``portbinding diagnose DB --from API`` asks whether API reaches DB: it must not point at its own
localhost, the two must share a user-defined network, and the name it uses must resolve there;
then what it reaches decides. Without ``--from``, a container that answers but is configured to
reach a dependency at its own localhost is told so (``calls_localhost``). Pure: facts in,
diagnosis out (:mod:`portbinding.diagnose.facts`); the fixes are :mod:`.peerfixes`'.
"""

from __future__ import annotations

from portbinding.diagnose import peerfixes
from portbinding.diagnose.diagnosis import Diagnosis, Fix
from portbinding.diagnose.facts import Facts


def peer_localhost(f: Facts) -> Diagnosis | None:
    peer = f.ev.peer
    if peer is None or f.port is None:
        return None
    local = peer.via_localhost
    if local is not None and local.accepted:
        return None  # something in the peer itself answers on localhost: not this mistake
    if not peer.mentions_localhost:
        return None  # it does not point at localhost (that we can see): judged by what it reaches
    return f.diagnosis("peer_localhost", peerfixes.peer_localhost(f.ev, f.port), "peer_localhost")


def not_same_network(f: Facts) -> Diagnosis | None:
    """No user-defined network in common: by name nothing resolves, by address nothing routes.

    Only Docker's default bridge in common still connects by address (no names there), so that
    case is this mistake only when the peer uses a name or its address does not connect.
    """
    peer = f.ev.peer
    if peer is None or peer.shared:
        return None
    by_address = peer.via_name is not None and peer.via_name.accepted
    if peer.only_default_bridge and by_address and not peer.names_used:
        return None  # judged by what it reaches
    return f.diagnosis("not_same_network", peerfixes.not_same_network(f.ev), "not_same_network")


def name_unresolved(f: Facts) -> Diagnosis | None:
    """On a shared network, the name the peer's configuration uses does not resolve from inside it."""
    peer = f.ev.peer
    if peer is None or not peer.shared:
        return None
    unresolved = [
        use for use in peer.names_used if use.answer is not None and use.answer.outcome == "unresolved"
    ]
    if not unresolved or any(use.resolves for use in peer.names_used):
        return None  # a name that does resolve is the one in use: judged by what it reaches
    return f.diagnosis("name_unresolved", peerfixes.name_unresolved(f.ev, unresolved[0]), "name_unresolved")


def peer_reaches(f: Facts) -> Diagnosis | None:
    peer = f.ev.peer
    if peer is None or peer.via_name is None or not peer.via_name.accepted:
        return None
    note = f"inside {peer.name}, localhost is {peer.name} itself: it uses {f.ev.container}'s name or address"
    return f.diagnosis(
        "ok",
        Fix(f"Nothing to fix: {peer.name} reaches {f.ev.container} at {peer.via_name.target}."),
        "peer_reaches",
        note,
    )


def calls_localhost(f: Facts) -> Diagnosis | None:
    """Reachable itself, but configured to reach another service at localhost, where nothing listens."""
    host = f.ev.host
    refs = f.ev.local_refs
    if host is None or not host.reachable or not refs or f.ev.peer is not None:
        return None
    return f.diagnosis("peer_localhost", peerfixes.calls_localhost(f.ev, refs[0]), "calls_localhost")
