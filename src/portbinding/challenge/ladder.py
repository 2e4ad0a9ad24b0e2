"""The ladder as a challenge uses it: rungs, the causes a challenge can have, and their words.

The vocabulary itself -- the rungs (``Layer``), each cause's rung, the commands that show each
piece of evidence (``LearnerCommands``) -- is the diagnosis' own (``portbinding.diagnose.ladder``)
and is only re-used here. What a challenge adds: its eight causes, one of them beyond a single
container's diagnosis (``port_taken``: another container holds the host port, so this one was
created but could not start -- the diagnosis says ``stopped``; see hints.py), the rung of the two
situations a live hint can meet besides a diagnosed cause (``other_service``, ``nothing``), and
the short words of the commit form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from portbinding.diagnose.ladder import CAUSE_LAYER, LAYER_QUESTION, LAYER_TITLE, LAYERS, Layer, cli_program

__all__ = ["LAYERS", "Layer", "cli_program"]

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


RUNGS: tuple[Rung, ...] = tuple(
    Rung(layer, number, LAYER_TITLE[layer][0].upper() + LAYER_TITLE[layer][1:], LAYER_QUESTION[layer])
    for number, layer in enumerate(LAYERS, start=1)
)
RUNG: dict[Layer, Rung] = {rung.layer: rung for rung in RUNGS}

# The diagnosis' rung for each of its causes, and the rungs of what only a challenge meets.
LAYER_OF: dict[str, Layer] = {
    **{str(cause): layer for cause, layer in CAUSE_LAYER.items()},
    "port_taken": "published",  # the host port is held: the mapping cannot be made
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
