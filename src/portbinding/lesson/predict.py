"""Predict, then observe; commit, then check: the lesson's reactions to what a learner guessed.

A lesson asks for a prediction in an answer variable (``my_guess = None``, then the learner's
choice) *before* the cell that looks. :func:`reveal` then compares the guess with what was
observed -- never with an answer key: on an engine where the wire behaves differently, what was
seen is the truth -- and reacts to a wrong guess with the lesson's own words for that guess.
:func:`check_commitment` does the same for a committed failing rung and cause against the
diagnosis, which is only shown after the commitment.

Both return a :class:`Reaction` that a notebook displays (HTML with a live region, the verdict in
words and a symbol, never only colour) and whose ``str()`` is the same text.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from portbinding.diagnose import Diagnosis
from portbinding.diagnose.ladder import CAUSE_LAYER, LAYER_TITLE, LAYERS, SUMMARY

Verdict = Literal["right", "wrong", "none"]
MARK: dict[Verdict, str] = {"right": "✔ Right", "wrong": "✘ Not quite", "none": "- No answer given"}
_COLOUR: dict[Verdict, str] = {"right": "#2e7d32", "wrong": "#c62828", "none": "#616161"}


@dataclass(frozen=True)
class Reaction:
    """The lesson's reaction to one prediction or commitment."""

    verdict: Verdict
    lines: tuple[str, ...]

    @property
    def right(self) -> bool:
        return self.verdict == "right"

    def __str__(self) -> str:
        return "\n".join((MARK[self.verdict], *self.lines))

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        body = "".join(f"<p style='margin:2px 0'>{html.escape(line)}</p>" for line in self.lines)
        return (
            f'<div role="status" aria-live="polite" style="border-left:4px solid {_COLOUR[self.verdict]};'
            f'padding:4px 10px;margin:4px 0"><strong>{html.escape(MARK[self.verdict])}</strong>{body}</div>'
        )


def _normal(value: object) -> str | None:
    if value is None or value is Ellipsis:
        return None
    return str(value).strip().strip("\"'").lower() or None


def reveal(
    predicted: object,
    observed: str,
    *,
    choices: Sequence[str],
    why: Mapping[str, str] | None = None,
    because: str = "",
) -> Reaction:
    """React to ``predicted`` (one of ``choices``, or None) given what was ``observed``.

    ``why`` holds the lesson's words for each wrong guess -- what makes that guess tempting and
    what rules it out; ``because`` is said whatever the guess (the explanation of what happened).
    """
    canonical = {choice.lower(): choice for choice in choices}
    said = _normal(predicted)
    guess = canonical.get(said) if said is not None else None
    seen = canonical.get(str(observed).lower(), str(observed))
    lines: list[str] = []
    if said is not None and guess is None:
        lines.append(
            f"{predicted!r} is not one of the choices ({', '.join(choices)}), so it counts as no prediction."
        )
        guess = None
    if guess is None:
        lines.append(f"What happened: {seen}.")
        lines.append("Next time, write a guess down before you look: that is what makes the answer stick.")
        verdict: Verdict = "none"
    elif guess == seen:
        lines.append(f"You predicted {guess}, and that is what happened.")
        verdict = "right"
    else:
        lines.append(f"You predicted {guess}; what happened: {seen}.")
        if why and guess in why:
            lines.append(why[guess])
        verdict = "wrong"
    if because:
        lines.append(because)
    return Reaction(verdict, tuple(lines))


def check_commitment(layer: object, cause: object, diagnosis: Diagnosis) -> Reaction:
    """Compare the rung and cause a learner committed to with ``diagnosis`` (shown only now)."""
    actual_layer = CAUSE_LAYER[diagnosis.cause]
    said_layer, said_cause = _normal(layer), _normal(cause)
    lines: list[str] = []
    if said_layer is not None and said_layer not in LAYERS:
        lines.append(f"{layer!r} is not a rung; the rungs are {', '.join(LAYERS)}.")
        said_layer = None
    if said_layer is None and said_cause is None:
        lines.append("You did not commit to a rung or a cause, so there is nothing to check yet.")
        verdict: Verdict = "none"
    else:
        layer_right = said_layer == actual_layer
        cause_right = said_cause == diagnosis.cause
        lines.append(
            f"Your rung: {said_layer or '(none)'} -- the first rung that does not hold is "
            f"{actual_layer} ({LAYER_TITLE[actual_layer]}). {'Right.' if layer_right else 'Not that one.'}"
        )
        lines.append(
            f"Your cause: {said_cause or '(none)'} -- the diagnosis says {diagnosis.cause}: "
            f"{SUMMARY[diagnosis.cause]} {'Right.' if cause_right else ''}".rstrip()
        )
        if not layer_right and said_layer in LAYERS and LAYERS.index(said_layer) > LAYERS.index(actual_layer):
            lines.append(
                "You went past the broken rung: go back down the ladder and stop at the first one that fails."
            )
        verdict = "right" if layer_right and cause_right else "wrong"
    lines.append("The diagnosis, from the same evidence you looked at:")
    # Up to its fix: writing the fix is the learner's next step (the lesson shows it if theirs fails).
    explained = diagnosis.explain().splitlines()
    cut = next((i for i, line in enumerate(explained) if line.lstrip().startswith("Fix:")), len(explained))
    lines.extend(f"   {line}" for line in explained[:cut])
    return Reaction(verdict, tuple(lines))
