"""Graduated hints from the live diagnosis: which rung, then the evidence there, then the fix.

A hint never comes from the challenge's draw. Each time one is asked for, ``find`` looks at
what the challenge's URL leads to *now* -- the container publishing its host port, else the
newest container meant to publish it, else the challenge's own container -- diagnoses it, and
the hint is built from that diagnosis: (1) the rung it broke, (2) what the diagnosis observed
on that rung (``Diagnosis.rungs()``) with the commands that show it, (3) the fix as one line
to paste into a terminal, with the challenge's host port, removing first whatever would stand
in its way.

Three situations are the challenge's own, beyond any one container's diagnosis: the host port
is held by another container, so the learner's container was created but its start failed
(``port_taken``: the diagnosis calls it ``stopped`` -- never started -- but ``docker start``
would fail again until the port is free, so the hint points at the published rung and the
holder); the URL answers as another service through a container that is fine in itself
(``other_service``); nothing is meant to publish the port any more (``nothing``).
"""

from __future__ import annotations

import contextlib
import shlex
from dataclasses import dataclass

from docker.models.containers import Container

from portbinding.challenge.ladder import LAYER_OF, RUNG, Layer, cli_program
from portbinding.challenge.rungs import curl_says, look
from portbinding.challenge.services import Service
from portbinding.challenge.stage import CHALLENGE_LABEL, mapping_for, port_taken_error
from portbinding.command import RunSpec
from portbinding.diagnose import Diagnosis, diagnose, spec_from_container
from portbinding.engine import Engine
from portbinding.engine_errors import ENGINE_ERRORS, engine_stopped
from portbinding.errors import ContainerNotFound
from portbinding.ports import PortMapping
from portbinding.probe import ProbeResult, probe_http


@dataclass(frozen=True)
class Finding:
    """What the challenge's URL leads to now, and why the right server does not answer there."""

    cause: str  # a ChallengeCause, or "ok", "other_service", "nothing"
    subject: Container | None  # the container to look at
    holder: Container | None  # what publishes the host port (port_taken, other_service)
    diagnosis: Diagnosis | None
    at_url: ProbeResult

    @property
    def layer(self) -> Layer:
        """The diagnosis' rung for its cause; the challenge's own rung for its own situations."""
        if self.diagnosis is not None and self.diagnosis.cause == self.cause:
            return self.diagnosis.layer
        return LAYER_OF[self.cause]


@dataclass(frozen=True)
class Hint:
    """One graduated hint."""

    number: int  # 1 layer, 2 evidence, 3 fix
    layer: Layer
    text: str
    commands: list[str]
    line: str = ""  # hint 3: the line to paste into a terminal
    subject: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "hint": self.number,
            "of": 3,
            "layer": self.layer,
            "rung": RUNG[self.layer].number,
            "text": self.text,
            "commands": self.commands,
            "line": self.line,
            "subject": self.subject,
        }


@dataclass(frozen=True)
class Located:
    """The containers that matter for the challenge's host port right now."""

    subject: Container | None  # the one to look at
    holder: Container | None  # the running one publishing the host port
    blocked: bool  # the subject never started because the port was held


def locate(engine: Engine, *, container: str, host_port: int, since: float) -> Located:
    """What the learner should look at now: see the module docstring (no diagnosis, no probe)."""
    holder = _holder(engine, host_port)
    candidates = _candidates(engine, container, host_port, since)
    blocked = [c for c in candidates if _never_started(c)]
    if blocked and (holder is not None or _status(blocked[0]) == "created"):
        return Located(blocked[0], holder, True)
    subject = holder or next((c for c in candidates if mapping_for(c, host_port)), None)
    if subject is None:
        subject = next((c for c in candidates if c.name == container), None)
    return Located(subject, holder, False)


def find(
    engine: Engine, *, container: str, host_port: int, url: str, expected: Service, since: float
) -> Finding:
    """Diagnose what now stands between ``url`` and ``expected`` (see the module docstring)."""
    at_url = probe_http(url, timeout=3.0)
    where = locate(engine, container=container, host_port=host_port, since=since)
    if expected.answers(at_url):
        return Finding("ok", where.holder, where.holder, None, at_url)
    subject = where.subject
    if subject is None:
        return Finding("nothing", None, None, None, at_url)
    mapping = mapping_for(subject, host_port)
    diagnosis = diagnose(
        engine,
        subject,
        container_port=mapping.container_port if mapping else None,
        expect=expected.expect,
        path=expected.path,
    )
    if where.blocked:  # created, its start refused: the host port is held (see the module docstring)
        return Finding("port_taken", subject, where.holder, diagnosis, at_url)
    if diagnosis.cause == "ok":
        return Finding("other_service", subject, subject, diagnosis, at_url)
    return Finding(diagnosis.cause, subject, where.holder, diagnosis, at_url)


def hint(
    engine: Engine, finding: Finding, number: int, *, url: str, host_port: int, expected: Service
) -> Hint:
    """Hint ``number`` (1-3) for ``finding``."""
    rung = RUNG[finding.layer]
    name = str(finding.subject.name) if finding.subject is not None else ""
    if finding.cause == "ok":
        return Hint(
            number, "host", f"Nothing to hint: {url} already answers as {expected.title}.", [], subject=name
        )
    if number == 1:
        about = f" Look at {name}: it is the container meant to serve {url}." if name else ""
        return Hint(
            1,
            rung.layer,
            f"Look at rung {rung.number}, {rung.title.lower()}: {rung.question}{about}",
            [],
            subject=name,
        )
    if number == 2:
        view = look(engine, finding.layer, finding.subject, url=url, host_port=host_port, expected=expected)
        notice = _notice(finding, host_port)
        return Hint(2, rung.layer, f"{rung.title}: {notice}\n\n{view.text()}", view.commands, subject=name)
    text, line = _fix(engine, finding, url=url, host_port=host_port, expected=expected)
    return Hint(
        3,
        rung.layer,
        text + (f"\n\nPaste into a terminal:\n  {line}" if line else ""),
        [line] if line else [],
        line=line,
        subject=name,
    )


# ------------------------------------------------------------------------------ finding


def _holder(engine: Engine, host_port: int) -> Container | None:
    try:
        running = engine.client.containers.list(filters={"publish": f"{host_port}/tcp"}, ignore_removed=True)
    except ENGINE_ERRORS as exc:
        raise engine_stopped(exc) from exc
    return running[0] if running else None


def _candidates(engine: Engine, container: str, host_port: int, since: float) -> list[Container]:
    """The challenge's own container and every container made since it started, newest first."""
    try:
        listed = engine.client.containers.list(all=True, sparse=True, ignore_removed=True)
    except ENGINE_ERRORS as exc:
        raise engine_stopped(exc) from exc
    found: list[Container] = []
    for item in sorted(listed, key=lambda c: int(c.attrs.get("Created") or 0), reverse=True):
        labels = item.attrs.get("Labels") or {}
        names = [str(n).lstrip("/") for n in item.attrs.get("Names") or []]
        ours = container in names
        if not ours and (int(item.attrs.get("Created") or 0) < since - 1 or CHALLENGE_LABEL in labels):
            continue  # older than the challenge, or the challenge's own squatter
        with contextlib.suppress(ContainerNotFound):
            full = engine.get(str(item.id))
            if ours or mapping_for(full, host_port):
                found.append(full)
    return found


def _status(container: Container) -> str:
    return str((container.attrs.get("State") or {}).get("Status") or "")


def _never_started(container: Container) -> bool:
    state = container.attrs.get("State") or {}
    return state.get("Status") == "created" and port_taken_error(str(state.get("Error") or ""))


# ------------------------------------------------------------------------------ hint 2


def _notice(finding: Finding, host_port: int) -> str:
    """The evidence on the broken rung in a sentence; the rung's commands and output follow it."""
    subject = str(finding.subject.name) if finding.subject is not None else ""
    if finding.cause == "nothing":
        return f"no container publishes host port {host_port} or is meant to."
    if finding.cause == "port_taken":
        holder = finding.holder
        state = (finding.subject.attrs.get("State") or {}) if finding.subject is not None else {}
        held = (
            f"{holder.name} publishes host port {host_port}" if holder is not None else "the port is free now"
        )
        error = str(state.get("Error") or "")
        said = error[error.find("Bind for") :] if "Bind for" in error else error or "no reason recorded"
        return f"{subject} was created but never started -- not crashed: its start failed ({said}); {held}."
    if finding.cause == "other_service":
        return f"through host port {host_port}, {subject} answers -- {curl_says(finding.at_url)[:160]}"
    assert finding.diagnosis is not None
    return _observed(finding.diagnosis, finding.layer)


def _observed(diagnosis: Diagnosis, layer: Layer) -> str:
    """What the diagnosis saw on ``layer``, after what it saw on the rung below it.

    A rung is read against the one it rests on: "listeners: 0.0.0.0:8080" means something beside
    "published: 8000/tcp -> 127.0.0.1:N". When ``layer`` saw nothing at all, the container's
    state comes first too: "running, up 4 s" and its log tail tell a slow start from an app
    that never listens.
    """
    rungs = list(diagnosis.rungs())
    index = next(i for i, rung in enumerate(rungs) if rung.layer == layer)
    broken = list(rungs[index].observations)
    below = list(rungs[index - 1].observations) if index else []
    if index > 1 and all(item.shows.startswith("nothing") for item in broken):
        below = [*rungs[0].observations, *below]
    seen = [*below, *broken]
    return "; ".join(f"{item.what}: {item.shows}" for item in seen) + "." if seen else "nothing was observed."


# ------------------------------------------------------------------------------ hint 3


def _fix(engine: Engine, finding: Finding, *, url: str, host_port: int, expected: Service) -> tuple[str, str]:
    """The fix in words, and the line to paste (with the challenge's host port)."""
    program = cli_program(engine.info.kind)
    host_ip = "127.0.0.1" if engine.publish_host in ("127.0.0.1", "localhost") else ""
    subject = str(finding.subject.name) if finding.subject is not None else ""
    known_good = _on_port(expected.known_good, host_port, host_ip, expected.container_port)
    if finding.cause == "nothing":
        return (
            f"Run {expected.title} with its port published on host port {host_port}.",
            known_good.to_cli(program=program),
        )
    if finding.cause == "port_taken":
        if finding.holder is None:
            return f"Host port {host_port} is free now: start {subject} again.", f"{program} start {subject}"
        holder = str(finding.holder.name)
        return (
            f"{holder} holds host port {host_port}, so {subject} cannot publish it. "
            f"Remove (or stop) {holder}, then "
            f"start {subject}.",
            f"{program} rm -f {shlex.quote(holder)} && {program} start {shlex.quote(subject)}",
        )
    if finding.cause == "other_service":
        return (
            f"{subject} answers on host port {host_port}, but it is not {expected.title}. Remove it and run "
            f"{expected.title} there.",
            f"{program} rm -f {shlex.quote(subject)} && {known_good.to_cli(program=program)}",
        )
    assert finding.diagnosis is not None and finding.subject is not None
    fix = finding.diagnosis.fix
    if fix.run is None:
        return fix.summary + (f" ({fix.config_change})" if fix.config_change else ""), ""
    current = _on_port(_run_line(engine, finding.subject), host_port, host_ip, None)
    wanted = _on_port(fix.run, host_port, host_ip, None)
    if _same_run(wanted, current):
        # Nothing to change on the run line: the fix is to wait for it, polling, not guessing.
        wait = f"curl --retry 300 --retry-delay 1 --retry-all-errors --max-time 5 -sS {shlex.quote(url)}"
        return f"{fix.summary} From a terminal, let curl do the polling:", wait
    running = _status(finding.subject) == "running"
    if mapping_for(finding.subject, host_port) is not None and running:
        why = f"{subject} holds host port {host_port}, so remove it first"
    elif running:
        why = (
            f"a container's published ports are set when it is created, so {subject} goes and a new one runs"
        )
    else:
        why = f"{subject} is not running; removing it keeps {program} ps -a tidy"
    line = f"{program} rm -f {shlex.quote(subject)} && {wanted.to_cli(program=program)}"
    return f"{_on_this_port(fix.summary, fix.run, wanted)} ({why}.)", line


def _on_this_port(summary: str, diagnosed: RunSpec, wanted: RunSpec) -> str:
    """The diagnosis' words, with its -p values as the challenge's line has them (its host port)."""
    for said, meant in zip(diagnosed.publish, wanted.publish, strict=False):
        if said.to_spec() != meant.to_spec():
            summary = summary.replace(said.to_spec(), meant.to_spec())
    return summary


def _on_port(spec: RunSpec, host_port: int, host_ip: str, container_port: int | None) -> RunSpec:
    """``spec`` publishing ``host_port`` (on ``host_ip``): the challenge's URL is fixed."""
    publish = list(spec.publish)
    if not publish and container_port is not None:
        publish = [PortMapping(container_port, "tcp", host_ip, host_port)]
    elif not any(m.host_port == host_port for m in publish) and publish:
        publish[-1] = publish[-1].with_host_port(host_port, host_ip=host_ip)
    publish = [
        m.with_host_port(host_port, host_ip=host_ip) if m.host_port == host_port else m for m in publish
    ]
    return spec.replace(publish=tuple(publish), detach=True)


def _run_line(engine: Engine, container: Container) -> RunSpec:
    """The line that would recreate ``container``, read the way the diagnosis reads it."""
    image = str((container.attrs.get("Config") or {}).get("Image") or "")
    try:
        config = dict(engine.client.images.get(image).attrs.get("Config") or {})
    except ENGINE_ERRORS:
        config = {}  # an image removed since: everything counts as set on the run line
    return spec_from_container(container.attrs, image_config=config)


def _same_run(one: RunSpec, other: RunSpec) -> bool:
    return (one.image, one.publish, one.env, one.command) == (
        other.image,
        other.publish,
        other.env,
        other.command,
    )
