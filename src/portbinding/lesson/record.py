"""A lesson's closing challenge, from the learner's side: their record, and ending it cleanly.

The widget keeps the attempt (``portbinding.challenge``); these two read and end it for a lesson
cell, so the cell reads ``your_record(challenge)`` rather than the bookkeeping. The real cause is
only named once the attempt is solved or ended: before that, the record would give it away.
"""

from __future__ import annotations

from portbinding.errors import PortBindingError
from portbinding.widgets.challenge import ChallengeWidget


def record_text(widget: ChallengeWidget) -> str:
    """The learner's record of ``widget``'s attempt, in words (the cause only once it is over)."""
    try:
        record = widget.challenge.attempt.record()
    except PortBindingError:
        return "Not started yet: press Start above (Run All does not start it for you)."
    if not (record["solved"] or record["ended"]):
        return f"Challenge {record['attempt']}: not solved yet; hints so far: {record['hints_used']}."
    took = f" in {record['time_to_fix_s']:.0f} s" if record["solved"] else ""
    verdict = "right" if record["cause_right"] else "not that"
    return "\n".join(
        (
            f"Challenge {record['attempt']}: {'solved' if record['solved'] else 'not solved'}{took}.",
            f"The cause was {record['cause']} (rung: {record['layer']}); you committed "
            f"{record['committed_cause'] or 'nothing'} -- {verdict}.",
            f"Hints used: {record['hints_used']}. Seconds per rung: {record['rung_seconds']}",
        )
    )


def your_record(widget: ChallengeWidget) -> None:
    """Print :func:`record_text` (a lesson cell's one line)."""
    print(record_text(widget))


def end_challenge(widget: ChallengeWidget) -> None:
    """End ``widget``'s attempt if one is running (recorded as ended); nothing if it never started."""
    try:
        challenge = widget.challenge
    except PortBindingError:
        return  # never started: nothing to end
    if not challenge.ended:
        widget.end()
