"""ex04's checks: a learner's Compose file read as written, and run by the judge as hardened containers.

``check_compose_file`` judges what the file says (which services publish where, what waits for
what) -- outside the kernel, like every graded answer, so a notebook cannot fake it.
``check_compose`` runs it:

The file is never given to Compose. :mod:`portbinding.grading.compose_policy` reads it as data
into one RunSpec per service; here each service becomes a graded container like every other
check's -- non-root, no capabilities, read-only root, capped logs (``confine``) -- on a network
made for this one check (:mod:`portbinding.grading.check_network`: no way out, nothing shared
with another check), where it answers to its service name. Services start in ``depends_on``
order, a ``service_healthy`` dependency only once the engine reports it healthy, as Compose does.
Published ports are moved to free ones on 127.0.0.1 (the learner's own ``ports:`` text is kept
for the questions about it). Then the question's service is asked for ``path`` through its
published port; when it does not answer as asked, the diagnosis of what broke -- the service
itself, or its dependency as seen from it -- becomes the feedback. Everything is removed after.

Why not the Compose CLI on a sanitized file: it would need the engine's socket with Compose's
own semantics (and its version's) between the policy and the engine; every option the walls
need would have to survive its file format. Run by the judge, each container is created by the
same code, with the same options, as every other graded container.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from docker.models.containers import Container

from portbinding.diagnose import Diagnosis, diagnose
from portbinding.engine import free_port
from portbinding.errors import ContainerFailed, EngineUnavailable
from portbinding.grading.answers import InvalidAnswer, path_field, port_field, text_field
from portbinding.grading.check_network import check_network
from portbinding.grading.compose_policy import MAX_COMPOSE_BYTES, ComposePlan, ServicePlan, read_compose
from portbinding.grading.confine import container_options
from portbinding.grading.protocol import CheckResult
from portbinding.probe import ProbeResult, probe_http, wait_until

if TYPE_CHECKING:
    from portbinding.grading.judge import Judge

LOGGER = logging.getLogger(__name__)
GRACE_S = 5.0  # after a first answer that is not a 200: long enough for a dependency a moment late


@dataclass(frozen=True)
class ComposeQuestion:
    """What a ``check_compose`` request asks of the learner's file."""

    text: str
    service: str
    container_port: int
    path: str = "/health"
    database: bool = False  # the reply must say "database": "ok" (the API reached its database)

    @classmethod
    def from_request(cls, request: dict[str, Any]) -> ComposeQuestion:
        return cls(
            text=text_field(request.get("compose"), what="the Compose file", limit=MAX_COMPOSE_BYTES),
            service=text_field(request.get("service"), what="the service", limit=40),
            container_port=port_field(request.get("container_port"), what="container_port"),
            path=path_field(request.get("path", "/health")),
            database=request.get("database") is True,
        )


@dataclass
class _Started:
    plan: ServicePlan
    container: Container
    moved: dict[int, int]  # the learner's host port (0: left to the engine) -> the grader's


def check_compose(judge: Judge, request: dict[str, Any]) -> CheckResult:
    question = ComposeQuestion.from_request(request)
    plan = read_compose(question.text)  # ComposeRefused (a PolicyError): "refused", with the reason
    details = _facts(plan, question)
    target = plan.service(question.service)
    if target is None:
        raise InvalidAnswer(
            f"The file has no service called {question.service!r} (it has {', '.join(details['services'])}); "
            "keep the services the exercise gives."
        )
    mine = [m for m in target.spec.publish if m.container_port == question.container_port]
    if not mine:
        return CheckResult(
            False,
            "wrong_answer",
            f"Expected: services > {question.service} > ports: to publish container port "
            f"{question.container_port}. Observed: {_ports_words(target)}. Next step: add "
            f'- "127.0.0.1:HOST:{question.container_port}" under its ports:.',
            details,
        )
    index = next(judge._counter)  # the judge's own numbering of its checks
    with ExitStack() as stack:
        network = stack.enter_context(check_network(judge.engine, index=index))
        started: dict[str, _Started] = {}
        for service in plan.services:
            failed = _wait_for_dependencies(judge, service, started)
            if failed is not None:
                return CheckResult(False, "wrong_answer", failed, details)
            started[service.name] = stack.enter_context(_started(judge, service, network, index))
        served = _served(judge, started[question.service], question)
        details["host_ports"] = {str(k): v for k, v in started[question.service].moved.items()}
        details["status"] = served.http_status
        body = _json(served.body_excerpt)
        if served.http_status == 200 and (not question.database or body.get("database") == "ok"):
            return CheckResult(True, "ok", _passed(question, started[question.service]), details)
        stale = _stale_image(question, started[question.service].plan, served, body)
        if stale is not None:
            return CheckResult(False, "grader_error", stale, details)
        found = _diagnosis(judge, started, question, served)
        details["cause"] = found.cause if found else None
        message = _failed(question, served, body, found)
        # The learner knows services, not the grader's container and network names.
        for name, item in started.items():
            message = message.replace(str(item.container.name), name)
        message = message.replace(network, "the file's network")
        return CheckResult(False, "wrong_answer", message, details)
    raise AssertionError("unreachable")  # pragma: no cover -- ExitStack does not swallow


PUBLISHED = {"loopback": "on this machine only", "nowhere": "nowhere"}
CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")


@dataclass(frozen=True)
class FileQuestion:
    """What a ``check_compose_file`` request asks of the file as written."""

    text: str
    service: str
    published: str | None  # a key of PUBLISHED, or None: not asked
    waits: tuple[tuple[str, str], ...]  # (service, condition) it must wait for

    @classmethod
    def from_request(cls, request: dict[str, Any]) -> FileQuestion:
        published, waits = request.get("published"), request.get("waits") or {}
        if published is not None and published not in PUBLISHED:
            raise InvalidAnswer(f"published must be one of {', '.join(PUBLISHED)}, not {published!r:.40}.")
        if not isinstance(waits, dict) or not all(
            isinstance(k, str) and v in CONDITIONS for k, v in waits.items()
        ):
            raise InvalidAnswer(f"waits maps a service to one of {', '.join(CONDITIONS)}.")
        return cls(
            text=text_field(request.get("compose"), what="the Compose file", limit=MAX_COMPOSE_BYTES),
            service=text_field(request.get("service"), what="the service", limit=40),
            published=published,
            waits=tuple(sorted(waits.items())),
        )


def check_compose_file(request: dict[str, Any]) -> CheckResult:
    """Judge the file as written: where ``service`` is published, and what it waits for."""
    question = FileQuestion.from_request(request)
    plan = read_compose(question.text)  # ComposeRefused (a PolicyError): "refused", with the reason
    target = plan.service(question.service)
    if target is None:
        names = ", ".join(item.name for item in plan.services)
        raise InvalidAnswer(
            f"The file has no service called {question.service!r} (it has {names}); keep the services "
            "the exercise gives."
        )
    details = {"published": [m.to_spec() for m in target.spec.publish], "depends_on": dict(target.depends_on)}
    problems = [p for p in (_publish_problem(question, target), _waits_problem(question, target)) if p]
    if problems:
        return CheckResult(False, "wrong_answer", "\n".join(problems), details)
    asked = [f"published {PUBLISHED[question.published]}" if question.published else ""]
    asked += [f"waits for {name} ({condition})" for name, condition in question.waits]
    return CheckResult(
        True, "ok", f"Passed: {question.service} is {' and '.join(a for a in asked if a)}.", details
    )


def _publish_problem(question: FileQuestion, target: ServicePlan) -> str | None:
    mappings = target.spec.publish
    if question.published == "loopback":
        if mappings and all(m.host_ip and ipaddress.ip_address(m.host_ip).is_loopback for m in mappings):
            return None
        return (
            f"Expected: {question.service} published on this machine only -- every entry under its "
            f'ports: starting with "127.0.0.1:". Observed: {_ports_words(target)}. Next step: write '
            '"127.0.0.1:HOST:CONTAINER" (quoted: YAML reads some unquoted ports as numbers).'
        )
    if question.published == "nowhere" and mappings:
        return (
            f"Expected: {question.service} published nowhere -- the other services reach it by its name "
            f"on the services' network. Observed: {_ports_words(target)} on this machine. Next step: "
            "remove its ports: (expose: documents a port without publishing it)."
        )
    return None


def _waits_problem(question: FileQuestion, target: ServicePlan) -> str | None:
    waits = dict(target.depends_on)
    wrong = [(name, condition) for name, condition in question.waits if waits.get(name) != condition]
    if not wrong:
        return None
    wanted = ", ".join(f"{name}: condition: {condition}" for name, condition in wrong)
    found = ", ".join(f"{name} ({condition})" for name, condition in waits.items()) or "nothing"
    return (
        f"Expected: {question.service} to wait for {wanted} (under its depends_on:). Observed: it waits "
        f"for {found}. A started database is not yet a ready one: service_healthy waits for its health check."
    )


def _facts(plan: ComposePlan, question: ComposeQuestion) -> dict[str, Any]:
    """What the file says, for the questions that judge it as written (private ports, depends_on)."""
    return {
        "services": [item.name for item in plan.services],
        "published": {item.name: [m.to_spec() for m in item.spec.publish] for item in plan.services},
        "depends_on": {item.name: dict(item.depends_on) for item in plan.services},
        "environment": {item.name: dict(item.spec.env) for item in plan.services},
    }


def _ports_words(service: ServicePlan) -> str:
    shown = ", ".join(m.to_spec() for m in service.spec.publish)
    return f"it publishes {shown}" if shown else "it publishes nothing"


# ------------------------------------------------------------------------------ running the services


@contextmanager
def _started(judge: Judge, service: ServicePlan, network: str, index: int) -> Iterator[_Started]:
    """One service as a graded container on the check's network, answering to its name; removed after."""
    moved: dict[int, int] = {}
    publish = []
    for mapping in service.spec.publish:
        grader_port = free_port()
        moved[mapping.host_port or 0] = grader_port
        publish.append(mapping.with_host_port(grader_port, host_ip="127.0.0.1"))
    spec = service.spec.replace(
        name=f"pbl-{judge.engine.session}-{index}-{service.name}", publish=tuple(publish), detach=True
    )
    endpoint = judge.engine.client.api.create_endpoint_config(aliases=[service.name])
    # The check's network has no way out, so a name it does not know (a misspelt service) finds no
    # upstream resolver to ask: give up after one second, as a resolver that says "no" would.
    options = {
        **container_options(network),
        "networking_config": {network: endpoint},
        "dns_opt": ["timeout:1", "attempts:1"],
    }
    container = judge.engine.run(spec, confinement=options)
    try:
        yield _Started(service, container, moved)
    finally:
        try:
            judge.engine.remove(container)
        except (ContainerFailed, EngineUnavailable) as error:
            LOGGER.warning("could not remove %s now (the session sweep will): %s", container.name, error)


def _wait_for_dependencies(judge: Judge, service: ServicePlan, started: dict[str, _Started]) -> str | None:
    """Compose's order: each dependency started, and healthy where the file asks; or why not."""
    for name, condition in service.depends_on:
        if condition == "service_healthy":
            problem = _healthy(judge, started[name].container, name, service.name)
            if problem is not None:
                return problem
    return None


def _healthy(judge: Judge, container: Container, name: str, waiting: str) -> str | None:
    if not judge.engine.state(container).get("Health"):
        return (
            f"Expected: {name} to become healthy before {waiting} starts (depends_on: condition: "
            f"service_healthy). Observed: {name}'s image has no HEALTHCHECK, so it never does -- Compose "
            "stops the same way. Next step: wait for service_started, or for a service with a HEALTHCHECK."
        )

    def healthy() -> bool:
        return str((judge.engine.state(container).get("Health") or {}).get("Status")) == "healthy"

    timeout = judge.limits.ready_timeout_s
    if wait_until(healthy, timeout=timeout, alive=lambda: judge.engine.is_running(container)):
        return None
    said = judge.engine.logs(container, tail=3).strip()[-300:]
    return (
        f"Expected: {name} to become healthy before {waiting} starts. Observed: it did not within "
        f"{timeout:.0f} s ({said}). Next step: `portbinding diagnose {name}` on your machine."
    )


def _served(judge: Judge, target: _Started, question: ComposeQuestion) -> ProbeResult:
    """GET ``path`` through the target's published port: once it answers at all, and then, if the
    answer is not a 200, a short grace for a dependency that is a moment late (plain depends_on)."""
    mapping = next(m for m in target.plan.spec.publish if m.container_port == question.container_port)
    url = f"http://127.0.0.1:{target.moved[mapping.host_port or 0]}{question.path}"
    seen: list[ProbeResult] = []
    running = lambda: judge.engine.is_running(target.container)  # noqa: E731

    def answers() -> bool:
        seen.append(probe_http(url, timeout=3))
        return seen[-1].http_status is not None

    def serves() -> bool:
        seen.append(probe_http(url, timeout=3))
        return seen[-1].http_status == 200

    if (
        wait_until(answers, timeout=judge.limits.ready_timeout_s, alive=running)
        and seen[-1].http_status != 200
    ):
        wait_until(serves, timeout=GRACE_S, alive=running)
    return seen[-1]


def _stale_image(
    question: ComposeQuestion, service: ServicePlan, served: ProbeResult, body: dict[str, Any]
) -> str | None:
    """The grader's fault, not the file's: a 200 without any word on the database although the
    service was given DATABASE_URL is an image older than this course (the scoring API learnt
    DATABASE_URL with lesson 07) -- an upgraded course whose images were not rebuilt."""
    if not question.database or served.http_status != 200 or "database" in body:
        return None
    if not dict(service.spec.env).get("DATABASE_URL"):
        return None  # the file gives no database: the learner's to fix, said by _failed
    image = service.spec.image
    return (
        f"The grading machine's {image} is older than this course: it answered 200 without a word on "
        "its database, so it does not read DATABASE_URL. This is a problem on the grading machine, not "
        "in your file. Instructors: `portbinding images build`, then grade again."
    )


def _json(text: str) -> dict[str, Any]:
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


# ------------------------------------------------------------------------------ feedback


def _diagnosis(
    judge: Judge, started: dict[str, _Started], question: ComposeQuestion, served: ProbeResult
) -> Diagnosis | None:
    """What broke: the service itself (not reachable), else a dependency as seen from it."""
    target = started[question.service]
    if served.http_status is None:
        return diagnose(
            judge.engine,
            target.container,
            container_port=question.container_port,
            expect="http",
            path=question.path,
        )
    for name, _ in target.plan.depends_on:
        dependency = started[name]
        port = next(iter(dependency.plan.expose), None) or _exposed(dependency.container)
        found = diagnose(judge.engine, dependency.container, peer=target.container, container_port=port)
        if found.cause != "ok":
            return found
    own = diagnose(judge.engine, target.container, container_port=question.container_port, path=question.path)
    return own if own.cause != "ok" else None


def _exposed(container: Container) -> int | None:
    ports = (container.attrs.get("Config") or {}).get("ExposedPorts") or {}
    return next((int(key.split("/")[0]) for key in sorted(ports)), None)


def _passed(question: ComposeQuestion, target: _Started) -> str:
    moved = ", ".join(f"{learner or 'any'} as {grader}" for learner, grader in target.moved.items())
    reached = " and it reached its database" if question.database else ""
    return (
        f"Passed: every service started, and {question.service} answered GET {question.path} through its "
        f"published port{reached} (the grader published host port {moved} on 127.0.0.1)."
    )


def _failed(
    question: ComposeQuestion, served: ProbeResult, body: dict[str, Any], found: Diagnosis | None
) -> str:
    expected = f"{question.service} answering GET {question.path} through its published port" + (
        ', with "database": "ok" (it reached its database)' if question.database else ""
    )
    said = f" {body.get('database')}" if body.get("database") else ""
    observed = f"{served.detail}{said}"
    if found is None:
        return f"Expected: {expected}.\nObserved: {observed}.\nNext step: read {question.service}'s logs."
    change = f" In the Compose file: {found.fix.config_change}." if found.fix.config_change else ""
    return (
        f"Expected: {expected}.\nObserved: {observed}.\nThe diagnosis: {found.summary}\n"
        f"Next step: {found.fix.summary}{change}"
    )
