"""One learner's attempt at a challenge: what happened when, and the record it leaves.

Pure bookkeeping, no engine: the challenge, the widget and the CLI append events (a rung
looked at, a cause committed, a hint given, the URL answering, the end), and ``record()``
turns them into the line the class report reads. Times are wall-clock seconds (``time.time``)
because an attempt spans several processes: a CLI call per step.

What can be seen of a learner's search: the widget's rung buttons and ``portbinding challenge
look`` are timed; commands typed in a plain terminal (``docker ps``, ``curl``) are not seen at
all, so for a terminal-only attempt the rung times are empty and only the commit, the hints and
the time to fix are known. Each record says which of these it has (``rungs_observed``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from portbinding.challenge.ladder import CHALLENGE_CAUSES, LAYER_OF, LAYERS, Layer
from portbinding.errors import PortBindingError, UnknownName

SCHEMA = 1
MAX_HINTS = 3
# A rung "looked at" longer than this was a coffee break, not a stall: count only this much.
IDLE_CAP_S = 600.0
# Events that end the time spent on a rung (a check of the URL does not: the watcher runs it).
_BOUNDARIES = ("look", "hint", "commit", "fix", "solved", "ended")
OBSERVABILITY = (
    "rung times come from the widget's rung buttons and `portbinding challenge look`; commands "
    "typed in a plain terminal are not seen"
)


@dataclass
class Event:
    """Something the learner did (or the checker saw), and when."""

    at: float
    kind: str  # look | commit | hint | fix | solved | ended
    layer: str = ""
    cause: str = ""
    number: int = 0
    via: str = ""  # widget | cli | watcher


@dataclass
class Attempt:
    """The persisted state of one attempt (what the state file holds)."""

    id: str
    learner: str
    seed: int
    cause: str
    service: str
    variant: str
    host_port: int
    url: str
    container: str
    image: str  # the neutral image reference
    started_at: float
    told: dict[str, Any] = field(default_factory=dict)
    squatter: str = ""
    engine_kind: str = ""
    events: list[Event] = field(default_factory=list)

    # ---------------------------------------------------------------------- reading

    @property
    def layer(self) -> Layer:
        return LAYER_OF[self.cause]

    @property
    def commits(self) -> list[Event]:
        return [e for e in self.events if e.kind == "commit"]

    @property
    def committed(self) -> bool:
        return bool(self.commits)

    @property
    def hints_used(self) -> int:
        return max((e.number for e in self.events if e.kind == "hint"), default=0)

    @property
    def solved_at(self) -> float | None:
        return next((e.at for e in self.events if e.kind == "solved"), None)

    @property
    def ended_at(self) -> float | None:
        return next((e.at for e in self.events if e.kind == "ended"), None)

    # ---------------------------------------------------------------------- writing

    def look(self, layer: str, *, at: float, via: str) -> None:
        """The learner looked at ``layer``'s rung."""
        self._open("look at a rung")
        self.events.append(Event(at, "look", layer=_layer(layer), via=via))

    def commit(self, layer: str, cause: str, *, at: float, via: str) -> Event:
        """The learner commits to a failing layer and a cause (recorded before any reveal)."""
        self._open("commit")
        if cause not in CHALLENGE_CAUSES:
            raise UnknownName(
                f"There is no cause called {cause!r} to commit to.",
                hint=f"choose one of: {', '.join(CHALLENGE_CAUSES)}",
            )
        event = Event(at, "commit", layer=_layer(layer), cause=cause, via=via)
        self.events.append(event)
        return event

    def hint_given(self, number: int, layer: str, *, at: float, via: str) -> None:
        self._open("ask for a hint")
        self.events.append(Event(at, "hint", layer=layer, number=number, via=via))

    def fixed(self, *, at: float, via: str) -> None:
        """The learner ran a command to fix it (only the widget's command box can tell)."""
        self.events.append(Event(at, "fix", via=via))

    def solved(self, *, at: float, via: str) -> bool:
        """The right server answered; False if that was already known."""
        if self.solved_at is not None:
            return False
        self.events.append(Event(at, "solved", via=via))
        return True

    def ended(self, *, at: float, via: str) -> None:
        if self.ended_at is None:
            self.events.append(Event(at, "ended", via=via))

    def _open(self, what: str) -> None:
        if self.ended_at is not None:
            raise PortBindingError(
                f"The challenge {self.id} has ended, so you cannot {what} any more.",
                hint="start a new one with `portbinding challenge new`",
            )

    # ---------------------------------------------------------------------- the record

    def rung_seconds(self) -> dict[str, float]:
        """Seconds spent on each rung: from looking at it to the next thing the learner did."""
        ordered = sorted((e for e in self.events if e.kind in _BOUNDARIES), key=lambda e: e.at)
        spent: dict[str, float] = {}
        for index, event in enumerate(ordered):
            if event.kind != "look" or index + 1 >= len(ordered):
                continue
            span = min(ordered[index + 1].at - event.at, IDLE_CAP_S)
            spent[event.layer] = round(spent.get(event.layer, 0.0) + max(span, 0.0), 3)
        return spent

    def record(self) -> dict[str, Any]:
        """The line the class report reads (one JSON object)."""
        first = self.commits[0] if self.commits else None
        solved_at = self.solved_at
        return {
            "schema": SCHEMA,
            "attempt": self.id,
            "learner": self.learner,
            "seed": self.seed,
            "cause": self.cause,
            "layer": self.layer,
            "service": self.service,
            "variant": self.variant,
            "started_at": self.started_at,
            "solved": solved_at is not None,
            "time_to_fix_s": round(solved_at - self.started_at, 3) if solved_at is not None else None,
            "ended": self.ended_at is not None,
            "committed_layer": first.layer if first else None,
            "committed_cause": first.cause if first else None,
            "layer_right": first.layer == self.layer if first else None,
            "cause_right": first.cause == self.cause if first else None,
            "commits": len(self.commits),
            "time_to_commit_s": round(first.at - self.started_at, 3) if first else None,
            "hints_used": self.hints_used,
            "rungs_looked": [e.layer for e in self.events if e.kind == "look"],
            "rung_seconds": self.rung_seconds(),
            "rungs_observed": any(e.kind == "look" for e in self.events),
            "via": sorted({e.via for e in self.events if e.via and e.via != "watcher"}),
            "observability": OBSERVABILITY,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Attempt:
        fields = dict(data)
        fields["events"] = [Event(**e) for e in fields.get("events", [])]
        return cls(**fields)


def _layer(layer: str) -> Layer:
    for known in LAYERS:
        if known == layer:
            return known
    raise UnknownName(f"There is no rung called {layer!r}.", hint=f"choose one of: {', '.join(LAYERS)}")
