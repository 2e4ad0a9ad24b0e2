"""Why can't I reach it? Evidence from every rung, a cause, and the exact fix.

The rungs, outside in (:mod:`~portbinding.diagnose.ladder`): is the container running (state,
exit code, restarts, logs)? Is the port published (the engine's mappings, its network mode)?
What listens inside, and on which address (the kernel's own tables)? What answers inside? What
answers from the host -- or from the container meant to reach it? The symptom alone misleads,
so the cause is read from the evidence.

Two halves: :func:`gather` collects (:mod:`.gather`, looking inside through the container's own
tools, the host's /proc, or a helper container: :mod:`.inside`), :func:`classify` decides with no
I/O (:mod:`.classify`, fixes from :mod:`.fixes`). :func:`diagnose` is both. Works on any
container, not only the course's: nothing here depends on the course images, except the helper.
"""

from __future__ import annotations

from collections.abc import Callable

from docker.models.containers import Container

from portbinding.diagnose.classify import RULE_NAMES, RULES, classify
from portbinding.diagnose.diagnosis import Diagnosis, Fix, Rung
from portbinding.diagnose.evidence import Evidence, HostProbe, InsideAnswer, Observation
from portbinding.diagnose.facts import expected_service
from portbinding.diagnose.gather import gather
from portbinding.diagnose.inside import Inside, Via, examine
from portbinding.diagnose.ladder import (
    CAUSE_LAYER,
    CAUSES,
    LAYER_QUESTION,
    LAYER_TITLE,
    LAYERS,
    SOURCE_TEXT,
    SUMMARY,
    Cause,
    Expect,
    Layer,
    LearnerCommands,
    LookPath,
    Source,
)
from portbinding.diagnose.peerevidence import LocalRef, NameUse, PeerEvidence, UpstreamEvidence
from portbinding.diagnose.probe_script import INSIDE_PROBE
from portbinding.diagnose.runline import RunLine, run_line_from_container, spec_from_container
from portbinding.engine import Engine
from portbinding.probe import ProbeResult
from portbinding.procnet import Listener


def diagnose(
    engine: Engine,
    container: Container | str,
    *,
    container_port: int | None = None,
    expect: Expect | None = None,
    path: str = "/",
    peer: Container | str | None = None,
    via: Via = "auto",
    probe: Callable[[str], ProbeResult] | None = None,
) -> Diagnosis:
    """Diagnose why ``container``'s port is (un)reachable: ``classify(gather(...), expect)``.

    ``container_port`` defaults to the first published, then requested, then exposed port, then
    what listens inside. ``expect`` ("jupyter", "http" or "tcp") says what should answer; by
    default it is inferred from what answers inside. ``path`` is what the host probe GETs.
    ``peer`` diagnoses reaching it from that container instead of from this machine.
    """
    evidence = gather(
        engine,
        container,
        container_port=container_port,
        expect=expect,
        path=path,
        peer=peer,
        via=via,
        probe=probe,
    )
    return classify(evidence, expect)


def look_inside(
    engine: Engine, container: Container, *, via: Via = "auto"
) -> tuple[list[Listener], list[InsideAnswer], list[str]]:
    """The container's listening sockets, what each answered from inside, and notes."""
    found = examine(engine, container, via=via)
    return list(found.listeners), list(found.answers), list(found.notes)


__all__ = [
    "CAUSES",
    "CAUSE_LAYER",
    "INSIDE_PROBE",
    "LAYERS",
    "LAYER_QUESTION",
    "LAYER_TITLE",
    "RULES",
    "RULE_NAMES",
    "SOURCE_TEXT",
    "SUMMARY",
    "Cause",
    "Diagnosis",
    "Evidence",
    "Expect",
    "Fix",
    "HostProbe",
    "Inside",
    "InsideAnswer",
    "Layer",
    "LearnerCommands",
    "LocalRef",
    "LookPath",
    "NameUse",
    "Observation",
    "PeerEvidence",
    "RunLine",
    "Rung",
    "Source",
    "UpstreamEvidence",
    "Via",
    "classify",
    "diagnose",
    "examine",
    "expected_service",
    "gather",
    "look_inside",
    "run_line_from_container",
    "spec_from_container",
]
