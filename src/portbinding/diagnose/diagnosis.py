"""A diagnosis: the cause, the rung it broke, the evidence it was read from, and the fix.

Every view reads these: the CLI (``explain()``, ``to_dict()``), the probe light and port map,
the grading feedback, and the challenge hints (``rungs()``: for each rung whether it holds, with
the observations and the commands that show them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from portbinding.command import RunSpec
from portbinding.diagnose.evidence import Evidence, Observation
from portbinding.diagnose.ladder import CAUSE_LAYER, LAYER_TITLE, LAYERS, SUMMARY, Cause, Expect, Layer
from portbinding.diagnose.probe_script import PROBE_PATH


@dataclass(frozen=True)
class Fix:
    """The remedy: what to type (in order), the corrected run line, and/or a configuration change.

    ``run`` is the corrected line as a course :class:`RunSpec` when it can be one (the console
    and the grader run those); ``line`` is the same line as a learner pastes it, with any options
    beyond the course's (``--restart``, ``--sysctl``, ...); ``commands`` are every command to type,
    in order -- ``docker rm -f NAME`` before a line that reuses the name, ``docker start NAME``
    for a container that was only stopped.
    """

    summary: str
    run: RunSpec | None = None
    config_change: str | None = None
    line: str | None = None
    commands: tuple[str, ...] = ()

    @property
    def run_line(self) -> str | None:
        """The corrected run line as text (``line``, else ``run`` printed for docker)."""
        return self.line or (self.run.to_cli() if self.run else None)

    def to_dict(self) -> dict[str, object]:
        return {
            "summary": self.summary,
            "run": self.run_line,
            "config_change": self.config_change,
            "commands": list(self.commands),
        }


@dataclass(frozen=True)
class Rung:
    """One rung of the ladder for this diagnosis: does it hold, and the evidence seen on it."""

    layer: Layer
    title: str
    holds: bool | None  # None: not reached, because an earlier rung is broken
    observations: tuple[Observation, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "layer": self.layer,
            "title": self.title,
            "holds": self.holds,
            "observations": [item.to_dict() for item in self.observations],
        }


@dataclass(frozen=True)
class Diagnosis:
    """A cause, the evidence it was read from, and the fix.

    ``rule`` names the classifier rule that decided (see ``portbinding.diagnose.classify``);
    ``expect`` is what was expected to answer, as asked or as inferred; ``notes`` are what the
    classifier adds for the learner (e.g. that a reachable service is not HTTP).
    """

    cause: Cause
    evidence: Evidence
    fix: Fix
    rule: str = ""
    expect: Expect | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def summary(self) -> str:
        return SUMMARY[self.cause]

    @property
    def layer(self) -> Layer:
        """The rung this cause belongs to (``host`` for ``ok``: the last rung checked)."""
        return CAUSE_LAYER[self.cause]

    @property
    def broken_layer(self) -> Layer | None:
        """The first rung that does not hold; None when everything holds."""
        return None if self.cause == "ok" else self.layer

    def rungs(self) -> tuple[Rung, ...]:
        """Every rung, outside in: holds (True), broken (False) or not reached (None)."""
        broken = self.broken_layer
        cut = LAYERS.index(broken) if broken is not None else len(LAYERS)
        trail = self.evidence.trail()
        return tuple(
            Rung(
                layer,
                LAYER_TITLE[layer],
                True if index < cut else False if index == cut else None,
                tuple(item for item in trail if item.layer == layer),
            )
            for index, layer in enumerate(LAYERS)
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "cause": self.cause,
            "summary": self.summary,
            "layer": self.layer,
            "broken_layer": self.broken_layer,
            "rule": self.rule,
            "expect": self.expect,
            "notes": list(self.notes),
            "evidence": self.evidence.to_dict(),
            "rungs": [rung.to_dict() for rung in self.rungs()],
            "fix": self.fix.to_dict(),
        }

    def explain(self) -> str:
        """A short text for a learner: the cause, the key evidence, the fix."""
        ev = self.evidence
        lines = [f"Cause: {self.cause} -- {self.summary}"]
        if self.broken_layer is not None:
            number = LAYERS.index(self.broken_layer) + 1
            lines.append(f"  broken rung: {number} of {len(LAYERS)}, {LAYER_TITLE[self.broken_layer]}")
        lines.append(f"  state: {ev.status}" + (f" (exit code {ev.exit_code})" if ev.exit_code else ""))
        published = ", ".join(ev.published) or "nothing"
        if ev.network_mode == "host":
            published += " (--network host: -p is ignored)"
        elif not ev.published and ev.requested and ev.status in ("exited", "dead", "created", "restarting"):
            # Only a running (or paused) container holds its host ports: the -p typed is still there.
            asked = " ".join(f"-p {m.to_spec()}" for m in ev.requested)
            published = f"nothing now (not running; it asked for {asked})"
        lines.append(f"  published: {published}")
        if ev.running:
            # look "none": the inside was not examined (no way in, see the notes), which is not "nothing".
            unseen = (
                "not examined (see the notes)"
                if ev.look == "none" or (ev.network_mode == "host" and ev.container_port is None)
                else "nothing yet"
            )
            lines.append(f"  listening inside: {', '.join(ev.listeners) or unseen}")
            replied = {a.target for a in ev.answers if a.outcome == "reply"}
            for where, words in ev.inside.items():
                # The inside probe asks GET /api (it tells Jupyter apart), not the host probe's path:
                # a 404 inside beside a 200 from the host is that, not a fault. Said where it got a reply.
                asked = f" (GET {PROBE_PATH})" if where in replied else ""
                lines.append(f"  inside, {where}{asked}: {words}")
        if ev.host is not None:
            result = ev.host.result
            lines.append(f"  from the host ({result.target}): {result.outcome} -- {result.detail}")
        if ev.peer is not None:
            for answer in (ev.peer.via_localhost, ev.peer.via_name):
                if answer is not None:
                    lines.append(f"  from {ev.peer.name} to {answer.target}: {answer.words()}")
        if ev.look not in ("exec", "none"):
            lines.append(f"  looked inside via: {ev.look}")
        lines.extend(f"  note: {note}" for note in (*ev.notes, *self.notes))
        lines.append(f"Fix: {self.fix.summary}")
        for command in self.fix.commands:
            lines.append(f"  $ {command}")
        if self.fix.run_line and self.fix.run_line not in self.fix.commands:
            lines.append(f"  run: {self.fix.run_line}")
        if self.fix.config_change:
            lines.append(f"  config: {self.fix.config_change}")
        return "\n".join(lines)
