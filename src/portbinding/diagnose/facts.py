"""What the classifier's rules read: the evidence, worked out once (no I/O).

:class:`Facts` holds what several rules need -- the port in question, what listens on it, what
answers where, what is published for it, what was expected to answer -- so each rule in
:mod:`portbinding.diagnose.classify` (and the rules between containers in
:mod:`portbinding.diagnose.peerrules`) reads the same conclusions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from portbinding.diagnose.diagnosis import Diagnosis, Fix
from portbinding.diagnose.evidence import Evidence, InsideAnswer
from portbinding.diagnose.ladder import Cause, Expect
from portbinding.engine import PublishedPort
from portbinding.procnet import Listener

_RETRIED = re.compile(r"The port (\d+) is already in use, trying another port")


@dataclass(frozen=True)
class Facts:
    """What the rules read, worked out once from the evidence."""

    ev: Evidence
    wanted: Expect
    port: int | None
    on_port: tuple[Listener, ...]
    mapped: tuple[PublishedPort, ...]
    good_port: int | None  # where what was expected answers inside
    port_answer: InsideAnswer | None  # what answered on the port (a listener's own probe)
    forwarded_answer: InsideAnswer | None  # what answered at the forwarded address
    retried_from: int | None  # Jupyter's "port N is already in use" in the logs

    @property
    def host_mode(self) -> bool:
        return self.ev.network_mode == "host"

    def serves(self, answer: InsideAnswer) -> bool:
        return serves(answer, self.wanted)

    def diagnosis(self, cause: Cause, fix: Fix, rule: str, *notes: str) -> Diagnosis:
        return Diagnosis(
            cause, self.ev, fix, rule=rule, expect=self.wanted, notes=(*notes, *_symptom_notes(self))
        )


Rule = Callable[[Facts], Diagnosis | None]


def facts_of(ev: Evidence, expect: Expect | None) -> Facts:
    port = ev.container_port
    on_port = tuple(ev.on_port())
    wanted = expected_service(expect, ev.answers, port)
    answers = [a for a in ev.answers if not a.forwarded]
    good = [a for a in answers if serves(a, wanted) and not a.is_loopback] or [
        a for a in answers if serves(a, wanted)
    ]
    good_port = good[0].port if good else None
    if any(a.port == port for a in good):
        good_port = port
    on = [a for a in answers if a.port == port and a.accepted]
    port_answer = next((a for a in on if not a.is_loopback), on[0] if on else None)
    forwarded = next((a for a in ev.answers if a.forwarded and a.port == port), None)
    return Facts(
        ev=ev,
        wanted=wanted,
        port=port,
        on_port=on_port,
        mapped=tuple(ev.mapped()),
        good_port=good_port,
        port_answer=port_answer,
        forwarded_answer=forwarded,
        retried_from=retried_from(ev.log_tail),
    )


def expected_service(expect: Expect | None, answers: tuple[InsideAnswer, ...], port: int | None) -> Expect:
    """What should answer: as asked, else inferred from what answers inside.

    Jupyter if any listener answers GET /api with its version; HTTP if what answers on the port
    speaks HTTP (or nothing there answered yet); TCP if something accepts on the port but does
    not speak HTTP.
    """
    if expect is not None:
        return expect
    if any(answer.is_jupyter for answer in answers):
        return "jupyter"
    on_port = [a for a in answers if a.port == port and a.accepted]
    if on_port and not any(a.is_http for a in on_port):
        return "tcp"
    return "http"


def serves(answer: InsideAnswer, wanted: Expect) -> bool:
    if wanted == "jupyter":
        return answer.is_jupyter
    if wanted == "http":
        return answer.is_http
    return answer.accepted


def clearly_not(answer: InsideAnswer, wanted: Expect) -> bool:
    """A reply that shows it is not the expected service (silence or a hang-up proves nothing)."""
    return answer.outcome == "reply" and not serves(answer, wanted)


def retried_from(logs: list[str]) -> int | None:
    for line in logs:
        match = _RETRIED.search(line)
        if match:
            return int(match.group(1))
    return None


def _symptom_notes(f: Facts) -> list[str]:
    """Why the symptom looks the way it does, where it differs from the usual one."""
    host = f.ev.host
    if host is not None and host.result.outcome == "refused" and f.mapped and not f.ev.engine_remote:
        return [
            "the host port refused rather than reset: this engine forwards without a userland proxy "
            "(dockerd --userland-proxy=false, or rootful Podman), so a refusal means what a reset "
            "means elsewhere"
        ]
    return []
