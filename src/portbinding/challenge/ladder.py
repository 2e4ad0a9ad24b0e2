"""The ladder a learner climbs, rung by rung, and the command that shows each rung.

    container state -> published ports -> what listens inside, on which address
                    -> what answers inside -> what answers from the host

INTERIM: this is the ONE place where the challenge maps causes to layers and evidence to the
commands a learner types. The diagnosis (issue 12) is growing its own ladder vocabulary (a
``Layer`` per cause, a command and provenance per piece of evidence); once that is on main,
``LAYER_OF`` and ``commands`` become thin re-exports of it and nothing else here changes.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Literal, get_args

Layer = Literal["state", "published", "listening", "inside", "host"]
LAYERS: tuple[Layer, ...] = get_args(Layer)

# What a challenge can be broken by: the diagnosis' causes, plus a host port held by another
# container (the diagnosis has no name for that yet: see hints.py's adapter).
ChallengeCause = Literal[
    "loopback_only",
    "wrong_container_port",
    "not_published",
    "crashed",
    "still_starting",
    "wrong_service",
    "port_retried",
    "port_taken",
]
CHALLENGE_CAUSES: tuple[ChallengeCause, ...] = get_args(ChallengeCause)


@dataclass(frozen=True)
class Rung:
    """One rung of the ladder as a learner meets it."""

    layer: Layer
    number: int
    title: str
    question: str


RUNGS: tuple[Rung, ...] = (
    Rung("state", 1, "Container state", "Is the container running, and what did it say (exit code, logs)?"),
    Rung(
        "published",
        2,
        "Published ports",
        "Which host port leads to which container port -- and who holds it?",
    ),
    Rung(
        "listening",
        3,
        "What listens inside",
        "Which ports are open inside the container, and on which address (127.0.0.1 or every interface)?",
    ),
    Rung(
        "inside", 4, "What answers inside", "Asked from inside the container, does the right service answer?"
    ),
    Rung("host", 5, "What answers from the host", "Asked through the published port, what comes back?"),
)
RUNG: dict[Layer, Rung] = {rung.layer: rung for rung in RUNGS}

# INTERIM (see the module docstring): the rung where each cause is seen to break.
LAYER_OF: dict[str, Layer] = {
    "crashed": "state",
    "not_published": "published",
    "wrong_container_port": "published",
    "port_taken": "published",
    "loopback_only": "listening",
    "still_starting": "listening",
    "wrong_service": "inside",
    "port_retried": "inside",
    "ok": "host",
    "other_service": "host",  # the URL answers, but as another service: what the host sees is the clue
    "nothing": "published",  # nothing at all is meant to publish the challenge's port any more
}

# Words for the commit form and the class report: what each cause means, without its evidence.
CAUSE_WORDS: dict[ChallengeCause, str] = {
    "loopback_only": "the server listens on 127.0.0.1 inside the container",
    "wrong_container_port": "-p points at a container port where the app does not listen",
    "not_published": "no host port is published for the app",
    "crashed": "the app exited before it could listen",
    "still_starting": "the app is still starting: it does not listen yet",
    "wrong_service": "another service answers on the published container port",
    "port_retried": "the app found its port taken inside and moved to another one",
    "port_taken": "another container holds the host port, so this one cannot start",
}


def cause_words(cause: str) -> str:
    """What ``cause`` means, in words (the name itself for anything unknown)."""
    return next((words for name, words in CAUSE_WORDS.items() if name == cause), cause)


def program_for(kind: str) -> str:
    """The CLI a learner on this engine kind types (the process engine has none: docker's words)."""
    return "podman" if kind == "podman" else "docker"


def inside_get(url: str) -> str:
    """A one-line GET run with the container's own python3 (slim images have no curl)."""
    opened = f"u.urlopen({url!r}, timeout=3)"
    return f"import urllib.request as u; r = {opened}; print(r.status, r.read(300).decode())"


def commands(
    layer: Layer, *, name: str, host_url: str, inside_url: str, program: str = "docker"
) -> list[str]:
    """The command lines that show ``layer`` for the container ``name`` (as a learner types them)."""
    quoted = shlex.quote(name)
    host_port = host_url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[-1]
    if layer == "state":
        return [f"{program} ps -a --filter name=^/{name}$", f"{program} logs --tail 15 {quoted}"]
    if layer == "published":
        return [f"{program} port {quoted}", f"{program} ps -a --filter publish={host_port}"]
    if layer == "listening":
        return [f"{program} exec {quoted} cat /proc/net/tcp /proc/net/tcp6"]
    if layer == "inside":
        return [f"{program} exec {quoted} python3 -c {shlex.quote(inside_get(inside_url))}"]
    return [f"curl -v --max-time 3 {host_url}"]
