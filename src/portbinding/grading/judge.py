"""The grader's checks: run a learner's answer on the engine, probe it, diagnose it, remove it.
Answers are judged by running them, never by matching strings: any line that makes the
server answer passes (``--publish=8888:8888``, ``--ip='*'``, another host port where the
question allows it). Before anything runs, the line goes through the course policy
(``parse_run``), the container gets a fresh name, and every fixed host port is replaced by a
free one -- so a correct answer never depends on 8888 being free on the grading machine, and
two submissions graded side by side never collide. Every container and image is labelled
with the grading session and removed when the check ends, whatever happened.

Every graded container is confined (``confine``): the grading network, 127.0.0.1, one
mapping, a forced non-root user, no capabilities, a read-only root, capped logs -- and an
image without an ENTRYPOINT runs its own command, never one a learner appended.
"""

from __future__ import annotations

import itertools
import logging
import shlex
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import docker.errors
import requests.exceptions
from docker.models.containers import Container

from portbinding.command import RunSpec, parse_run
from portbinding.diagnose import Diagnosis, diagnose
from portbinding.engine import Engine, free_port
from portbinding.errors import (
    ContainerFailed,
    EngineUnavailable,
    ImageBuildError,
    ImageMissing,
    PolicyError,
    PortInUse,
    PortSpecError,
)
from portbinding.grading import dockerfile
from portbinding.grading.answers import (
    CauseQuestion,
    InvalidAnswer,
    RunQuestion,
    config_line,
    context_files,
    one_mapping,
    path_field,
    port_not_in,
    text_field,
)
from portbinding.grading.compose_judge import check_compose, check_compose_file
from portbinding.grading.confine import HOME, Confinement, publish_ip
from portbinding.grading.feedback import (
    TWELVE_FACTOR_HINTS,
    busy_port_result,
    cause_message,
    failed_message,
    passed_message,
    static_problem,
)
from portbinding.grading.portquery import answer_port_query
from portbinding.grading.protocol import CheckResult
from portbinding.paths import images_dir
from portbinding.ports import PortMapping
from portbinding.probe import ProbeResult, is_jupyter, probe_http, wait_for

LOGGER = logging.getLogger(__name__)

# check_config: the image a learner may name -> (the course's image folder, the reference the
# grader builds FROM). A fixed map chosen by the grader: the learner's text only selects an entry.
_LOOPBACK = ("notebook-loopback", "portbinding/notebook-loopback:1.0")
_NOTEBOOK = ("notebook", "portbinding/notebook:1.0")
CONFIG_IMAGES: dict[str, tuple[str, str]] = {
    "portbinding/notebook-loopback:1.0": _LOOPBACK,
    "portbinding/notebook-loopback": _LOOPBACK,
    "portbinding/notebook:1.0": _NOTEBOOK,
    "portbinding/notebook": _NOTEBOOK,
}
CONFIG_PATH = "/etc/jupyter/jupyter_server_config.py"
_START_RETRIES = 5


@dataclass(frozen=True)
class Limits:
    """How much a single check may cost the grading machine."""

    ready_timeout_s: float = 30.0
    build_timeout_s: float = 60.0
    max_checks: int = 60


@dataclass
class _Run:
    """The grader's version of a learner's line, and how its host ports were moved."""

    spec: RunSpec
    publish: tuple[PortMapping, ...] = ()  # the learner's mappings (-P spelled out)
    moved: dict[int, int] = field(default_factory=dict)  # learner's host port -> grader's
    occupied: dict[int, int] = field(default_factory=dict)  # simulated busy port -> the port held


class Judge:
    """Runs checks against one engine session. Thread-safe: one check runs at a time."""

    def __init__(self, engine: Engine, *, limits: Limits | None = None) -> None:
        self.engine = engine
        self.limits = limits or Limits()
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self.checks_run = 0
        self.confinement = Confinement(engine)

    def handle(self, request: dict[str, Any]) -> CheckResult:
        """Answer one request; learner mistakes and engine trouble become results, never exceptions."""
        kind = request.get("kind")
        handlers: dict[str, Callable[[dict[str, Any]], CheckResult]] = {
            "check_run": self._check_run,
            "check_config": self._check_config,
            "check_image": self._check_image,
            "check_cause": self._check_cause,
            "check_compose": lambda request: check_compose(self, request),
            "check_compose_file": check_compose_file,
        }
        handler = handlers.get(str(kind))
        if handler is None:
            return CheckResult(False, "invalid", f"The grader does not know the check {kind!r}.")
        with self._lock:
            if self.checks_run >= self.limits.max_checks:
                return CheckResult(
                    False,
                    "over_budget",
                    f"This notebook already ran {self.checks_run} checks, "
                    "the most the grader runs for one notebook; this one was not run.",
                )
            self.checks_run += 1
            try:
                return self._handle(handler, request)
            finally:
                self.confinement.release()

    def _handle(
        self, handler: Callable[[dict[str, Any]], CheckResult], request: dict[str, Any]
    ) -> CheckResult:
        """Learner mistakes and engine trouble as results: refused, invalid, or the grader's fault."""
        try:
            return handler(request)
        except InvalidAnswer as error:
            return CheckResult(False, "invalid", str(error))
        except (PolicyError, PortSpecError) as error:
            return CheckResult(False, "refused", f"The grader did not run it. {error}")
        except ImageBuildError as error:
            return CheckResult(False, "build_failed", str(error))
        except ContainerFailed as error:
            return CheckResult(
                False,
                "grader_error",
                f"The container disappeared while it was being checked "
                f"({error}); something else on the grading machine removed it. This is not a "
                "problem in your answer.",
            )
        except (ImageMissing, EngineUnavailable) as error:
            LOGGER.error("grading engine problem: %s", error)
            return CheckResult(
                False,
                "grader_error",
                f"The grader could not run this check: {error} "
                "(a problem on the grading machine, not in your answer).",
            )

    # ------------------------------------------------------------------------------ run lines

    def _check_run(self, request: dict[str, Any]) -> CheckResult:
        question = RunQuestion.from_request(request)
        spec = parse_run(question.line)
        one_mapping(spec)
        problem = static_problem(spec, question)
        if problem:
            return CheckResult(False, "wrong_answer", problem, {"line": spec.to_cli()})
        with ExitStack() as stack:
            run = self._grader_run(spec, question, stack)
            try:
                container = self._start(run, spec)
            except PortInUse as error:
                return busy_port_result(error, run.occupied, spec, question)
            except ContainerFailed as error:
                return CheckResult(False, "refused", f"The engine could not start it: {error}")
            with self._removed(container):
                return self._judge(container, spec, question, run)
        raise AssertionError("unreachable")  # pragma: no cover -- ExitStack does not swallow

    def _check_cause(self, request: dict[str, Any]) -> CheckResult:
        """Run the question's line, diagnose it, and compare the learner's cause with the evidence's."""
        question = CauseQuestion.from_request(request)
        spec = parse_run(question.line)
        one_mapping(spec)
        as_run = question.as_run()
        with ExitStack() as stack:
            run = self._grader_run(spec, as_run, stack)
            container = self._start(run, spec)
            with self._removed(container):
                ready = self._settle(container, as_run)
                diagnosis = self._diagnose(container, as_run)
        passed = diagnosis.cause == question.cause
        message = cause_message(question.cause, diagnosis, ready, passed=passed)
        return CheckResult(passed, "ok" if passed else "wrong_answer", message, {"line": spec.to_cli()})

    def _grader_run(self, spec: RunSpec, question: RunQuestion, stack: ExitStack) -> _Run:
        """The line as the grader runs it: fresh name and host ports, 127.0.0.1, HOME on the tmpfs.

        Each 'occupied' port is really held while the check runs. ``-P`` becomes the explicit
        mapping it stands for (the image's exposed port on a port the engine picks), so that it
        too is published on the grader's address only.
        """
        config = self._image_config(spec.image)
        if spec.command and not config.get("Entrypoint"):
            shown = " ".join(config.get("Cmd") or []) or "its own program"
            raise PolicyError(
                f"{spec.image} starts its own program ({shown}) and takes no arguments: the words after the "
                f"image name ({shlex.join(spec.command)}) would replace that program.",
                hint="Remove everything after the image name; change the app's settings with -e NAME=value.",
            )
        publish = spec.publish
        if spec.publish_all:
            publish = tuple(
                PortMapping(int(port), protocol or "tcp", "", None)
                for port, _, protocol in (
                    key.partition("/") for key in sorted(config.get("ExposedPorts") or {})
                )
            )
            if len(publish) > 1:
                raise PolicyError(
                    f"-P publishes every port {spec.image} exposes ({len(publish)}); the grader publishes "
                    "one.",
                    hint="Publish the one port the question is about with -p.",
                )
        run = _Run(
            spec.replace(
                name=f"pbl-{self.engine.session}-{next(self._counter)}",
                detach=True,
                remove=False,
                interactive=False,
                tty=False,
                publish_all=False,
                env=(*((k, v) for k, v in spec.env if k != "HOME"), ("HOME", HOME)),
            ),
            publish,
        )
        for mapping in publish:
            port = mapping.host_port
            if port and port in question.occupied_host_ports and port not in run.occupied:
                run.occupied[port] = stack.enter_context(_held_port())
        _move_ports(run, host_ip=publish_ip(self.engine))
        return run

    def _image_config(self, image: str) -> dict[str, Any]:
        """The image's own Config (ENTRYPOINT, CMD, exposed ports); empty if the engine has no such image."""
        try:
            return dict(self.engine.client.images.get(image).attrs.get("Config") or {})
        except docker.errors.ImageNotFound:
            return {}  # Engine.run says so, with the hint to build it
        except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as error:
            raise EngineUnavailable(f"The grading engine did not answer about {image}: {error}") from error

    def _start(self, run: _Run, spec: RunSpec) -> Container:
        """Start the grader's version of the line, confined; choose new host ports if one was taken."""
        for attempt in range(_START_RETRIES):
            last = attempt == _START_RETRIES - 1
            try:
                return self.engine.run(run.spec, confinement=self.confinement.options())
            except PortInUse as error:
                # Another check took "our" free port between the choice and the start: choose again.
                if error.port in run.occupied.values() or last:
                    raise
                _move_ports(run, host_ip=publish_ip(self.engine))
            except ContainerFailed as error:
                # Another check removed the (then unused) grading network between our ensure and create.
                if last or "network" not in str(error) or "not found" not in str(error):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def _removed(self, container: Container) -> Iterator[Container]:
        try:
            yield container
        finally:
            try:
                self.engine.remove(container)
            except (ContainerFailed, EngineUnavailable) as error:
                LOGGER.warning("could not remove %s now (the session sweep will): %s", container.name, error)

    def _judge(self, container: Container, spec: RunSpec, question: RunQuestion, run: _Run) -> CheckResult:
        """Wait for the server, probe it, and diagnose it if it does not answer as the question expects."""
        ready = self._settle(container, question)
        serves = ready.ok and (question.expect != "jupyter" or is_jupyter(ready))
        details: dict[str, Any] = {
            "line": spec.to_cli(),
            "host_ports": {str(k): v for k, v in run.moved.items()},
        }
        if serves and question.port_query is not None:
            found = answer_port_query(self.engine, container, spec, question)
            if isinstance(found, CheckResult):
                return found
            details["port_query_answer"] = found
        if serves:
            return CheckResult(True, "ok", passed_message(spec, question, run.moved), details)
        diagnosis = self._diagnose(container, question)
        details["diagnosis"] = diagnosis.to_dict()
        return CheckResult(
            False,
            diagnosis.cause if diagnosis.cause != "ok" else "wrong_answer",
            failed_message(diagnosis, question, ready),
            details,
        )

    def _diagnose(self, container: Container, question: RunQuestion) -> Diagnosis:
        # A line that publishes only some other container port is diagnosed on that port: its
        # mistake is the container side of -p (wrong_container_port), not a missing -p.
        published = {p.container_port for p in self.engine.ports(container)}
        diagnosed = question.container_port if question.container_port in published or not published else None
        return diagnose(
            self.engine,
            container,
            container_port=diagnosed,
            expect="jupyter" if question.expect == "jupyter" else "http",
            path=question.path,
        )

    def _settle(self, container: Container, question: RunQuestion) -> ProbeResult:
        """Wait until the server answers -- or until waiting cannot change the verdict.

        A wrong answer never becomes reachable: settled once something answers (not a 5xx of an
        app still loading), listens where forwarded traffic cannot reach it, or stopped. A server
        listening where forwarded traffic arrives is still starting (on a loaded machine its first
        answer can take seconds).
        """
        host_port = self.engine.host_port(container, question.container_port)
        url = f"http://{self.engine.publish_host}:{host_port}{question.path}" if host_port else None
        unpublished = ProbeResult(
            "refused",
            f"container port {question.container_port} is not published, so nothing on the host leads to it",
            0.0,
        )
        last = [unpublished]

        def attempt() -> ProbeResult:
            result = probe_http(url, timeout=2.0) if url else unpublished
            last.append(result)
            answered = result.outcome == "unexpected_response" and (result.http_status or 0) < 500
            settled = result.ok or answered
            if settled or self._cannot_answer(container, question, published=url is not None):
                return ProbeResult("ok", "settled", 0.0)  # stops wait_for; the verdict is in last[-1]
            return result

        wait_for(
            attempt,
            timeout=self.limits.ready_timeout_s,
            alive=lambda: self.engine.is_running(container),
            first_interval=0.05,
            max_interval=0.5,
        )
        if url and not last[-1].ok and self.engine.is_running(container):
            last.append(probe_http(url, timeout=2.0))  # it may have come up right after the last probe
        return last[-1]

    def _cannot_answer(self, container: Container, question: RunQuestion, *, published: bool) -> bool:
        """Something listens inside (read from /proc, no tools needed), but no forwarded traffic
        reaches it: the question's port is not published, or the server listens on a loopback
        address or on another port."""
        listening = self.engine.listeners(container)
        reachable = [
            item for item in listening if item.port == question.container_port and not item.is_loopback
        ]
        return bool(listening) and not (published and reachable)

    # ------------------------------------------------------------------------------ config files

    def _check_config(self, request: dict[str, Any]) -> CheckResult:
        line = config_line(text_field(request.get("line"), what="the config line", limit=300))
        image = text_field(request.get("image"), what="the image", limit=200)
        if image not in CONFIG_IMAGES:
            raise InvalidAnswer(
                f"check_config works on {', '.join(sorted(CONFIG_IMAGES))}, not {image!r:.80}."
            )
        folder, base = CONFIG_IMAGES[image]  # the grader's own reference: nothing learner-written is built
        question = RunQuestion(
            line=line, container_port=8888, expect="jupyter", path=path_field(request.get("path", "/api"))
        )
        shipped = (images_dir() / folder / "jupyter_server_config.py").read_text()
        config = f"{shipped.rstrip()}\n\n# The learner's line, last so that it wins:\n{line}\n"
        dockerfile_text = f"FROM {base}\nCOPY jupyter_server_config.py {CONFIG_PATH}\n"
        tag = f"portbinding-grading/config:{self.engine.session}-{next(self._counter)}"
        with self._built(tag, dockerfile_text, {"jupyter_server_config.py": config.encode()}):
            result = self._run_built(
                RunSpec(image=tag, publish=(PortMapping(8888, "tcp", "", None),)), question
            )
        if result.passed:
            return CheckResult(
                True,
                "ok",
                f"Passed: with `{line}` in {CONFIG_PATH}, the image's Jupyter server "
                "answers through the published port, with no option on the run line.",
                result.details,
            )
        return CheckResult(
            False,
            result.cause,
            f"With `{line}` appended to {CONFIG_PATH} the server is still not reachable.\n{result.message}",
            result.details,
        )

    # ------------------------------------------------------------------------------ images (ex03)

    def _check_image(self, request: dict[str, Any]) -> CheckResult:
        files = context_files(request.get("files"))
        text = files.pop("Dockerfile", None)
        if text is None:
            raise InvalidAnswer(
                "There is no file called Dockerfile next to your app: the grader builds the "
                "image from it. Next step: write it (e.g. with %%writefile Dockerfile)."
            )
        path = path_field(request.get("path", "/health"))
        base = dockerfile.ensure_grading_base(self.engine.client)
        rewritten = dockerfile.check_and_rewrite(text.decode(errors="replace"), base=base)
        port = port_not_in(files, text)
        tag = f"portbinding-grading/image:{self.engine.session}-{next(self._counter)}"
        question = RunQuestion(line="", container_port=port, expect="http", path=path)
        with self._built(tag, rewritten, files):
            spec = RunSpec(
                image=tag, publish=(PortMapping(port, "tcp", "", None),), env=(("PORT", str(port)),)
            )
            result = self._run_built(spec, question)
        details = {**result.details, "port": port}
        if result.passed:
            return CheckResult(
                True,
                "ok",
                f"Passed: your image built, and with PORT={port} your app answered "
                f"GET {path} through the published port.",
                details,
            )
        return CheckResult(
            False,
            result.cause,
            f"Your image built, but run with -e PORT={port} -p HOST:{port} "
            f"it did not answer GET {path}.{TWELVE_FACTOR_HINTS.get(result.cause, '')}\n{result.message}",
            details,
        )

    def _run_built(self, spec: RunSpec, question: RunQuestion) -> CheckResult:
        """Run an image the grader just built (the grader's own line), confined, and judge it."""
        with ExitStack() as stack:
            run = self._grader_run(spec, question, stack)
            container = self._start(run, spec)
            with self._removed(container):
                return self._judge(container, spec, question, run)
        raise AssertionError("unreachable")  # pragma: no cover -- ExitStack does not swallow

    @contextmanager
    def _built(self, tag: str, dockerfile_text: str, files: dict[str, bytes]) -> Iterator[str]:
        labels = {**self.engine.labels, "portbinding.grading": "learner-image"}
        dockerfile.build(
            self.engine.client,
            dockerfile=dockerfile_text,
            files=files,
            tag=tag,
            labels=labels,
            timeout=self.limits.build_timeout_s,
        )
        try:
            yield tag
        finally:
            dockerfile.remove_image(self.engine.client, tag)


# ---------------------------------------------------------------------------------- helpers


def _move_ports(run: _Run, *, host_ip: str) -> None:
    """Publish the learner's mappings on ``host_ip``, each fixed host port moved to a free one."""
    run.moved = {}
    publish: list[PortMapping] = []
    for mapping in run.publish:
        port = mapping.host_port
        if port:
            port = run.occupied[port] if port in run.occupied else run.moved.setdefault(port, free_port())
        publish.append(mapping.with_host_port(port or None, host_ip=host_ip))
    run.spec = run.spec.replace(publish=tuple(publish))


@contextmanager
def _held_port() -> Iterator[int]:
    """A host port that really is busy while the block runs (a listening socket on every address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])
