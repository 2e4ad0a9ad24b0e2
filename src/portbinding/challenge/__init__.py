"""Challenges: a broken container drawn from a seed, which the learner diagnoses and fixes.

``Challenge.new(engine, seed=...)`` starts one; the learner looks rung by rung, commits to a
layer and a cause, asks for graduated hints built from the live diagnosis, and fixes it any way
they like while a live checker watches the URL. Each attempt leaves a record, and
``portbinding progress`` turns a class's records into the misconception picture.

Modules, one concept each: ``ladder`` (the rungs, causes and commands), ``services`` (how to
recognise the right server), ``draw`` (seed -> challenge), ``stage`` (running it under neutral
names), ``rungs`` (looking at one rung), ``hints`` (the live diagnosis -> hints), ``attempt``
(what happened when), ``store`` (state and records on disk), ``core`` (the challenge itself),
``report`` (the class picture), ``cli`` (``portbinding challenge`` and ``progress``).
"""

from __future__ import annotations

from portbinding.challenge.core import Challenge, Check, Ending
from portbinding.challenge.draw import Draw, draw
from portbinding.challenge.ladder import CHALLENGE_CAUSES, LAYERS, RUNGS, ChallengeCause, Layer

__all__ = [
    "CHALLENGE_CAUSES",
    "LAYERS",
    "RUNGS",
    "Challenge",
    "ChallengeCause",
    "Check",
    "Draw",
    "Ending",
    "Layer",
    "draw",
]
