"""The grader's checks: run a learner's answer on the engine, probe it, diagnose it, remove it.

Answers are judged by running them, never by matching strings: any line that makes the
server answer passes (``--publish=8888:8888``, ``--ip='*'``, another host port where the
question allows it). Before anything runs, the line goes through the course policy
(``parse_run``), the container gets a fresh name, and every fixed host port is replaced by a
free one -- so a correct answer never depends on 8888 being free on the grading machine, and
two submissions graded side by side never collide. Every container and image is labelled
with the grading session and removed when the check ends, whatever happened.
"""

from __future__ import annotations

import itertools
import logging
import re
import shlex
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from docker.models.containers import Container

from portbinding.command import RunSpec, parse_run
from portbinding.diagnose import diagnose
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
    InvalidAnswer,
    RunQuestion,
    config_line,
    context_files,
    path_field,
    port_not_in,
    text_field,
)
from portbinding.grading.feedback import (
    TWELVE_FACTOR_HINTS,
    busy_port_result,
    failed_message,
    passed_message,
    static_problem,
    what,
)
from portbinding.grading.protocol import CheckResult
from portbinding.paths import images_dir
from portbinding.ports import PortMapping
from portbinding.probe import ProbeResult, is_jupyter, probe_http, wait_for
from portbinding.procnet import LISTEN_COMMAND, listeners_from_proc, split_cat_output

LOGGER = logging.getLogger(__name__)

# The course images that ship a Jupyter config file a learner may fix (check_config).
CONFIG_IMAGES = {"portbinding/notebook-loopback": "notebook-loopback", "portbinding/notebook": "notebook"}
CONFIG_PATH = "/etc/jupyter/jupyter_server_config.py"
MAX_LINE_CHARS = 2000
MAX_CONTEXT_FILES = 20
MAX_CONTEXT_BYTES = 512_000
_CONTEXT_NAME = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")
_PORT_RETRIES = 3


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

    def handle(self, request: dict[str, Any]) -> CheckResult:
        """Answer one request; learner mistakes and engine trouble become results, never exceptions."""
        kind = request.get("kind")
        handlers: dict[str, Callable[[dict[str, Any]], CheckResult]] = {
            "check_run": self._check_run,
            "check_config": self._check_config,
            "check_image": self._check_image,
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

    def _grader_run(self, spec: RunSpec, question: RunQuestion, stack: ExitStack) -> _Run:
        """Fresh name, fresh host ports; each 'occupied' port is really held while the check runs."""
        run = _Run(
            spec.replace(
                name=f"pbl-{self.engine.session}-{next(self._counter)}",
                detach=True,
                remove=False,
                interactive=False,
                tty=False,
            )
        )
        for mapping in spec.publish:
            port = mapping.host_port
            if port and port in question.occupied_host_ports and port not in run.occupied:
                run.occupied[port] = stack.enter_context(_held_port())
        _move_ports(run, spec)
        return run

    def _start(self, run: _Run, spec: RunSpec) -> Container:
        for attempt in range(_PORT_RETRIES):
            try:
                return self.engine.run(run.spec)
            except PortInUse as error:
                # Another check took "our" free port between the choice and the start: choose again.
                if error.port in run.occupied.values() or attempt == _PORT_RETRIES - 1:
                    raise
                _move_ports(run, spec)
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
            found = self._answer_port_query(container, spec, question)
            if isinstance(found, CheckResult):
                return found
            details["port_query_answer"] = found
        if serves and question.private:
            exposed = _reachable_from_network(self.engine, container, question)
            if exposed is not None:
                return CheckResult(
                    False,
                    "wrong_answer",
                    (
                        f"Expected: {what(question)} reachable from this machine only. Observed: it also "
                        f"answered at {exposed}, this machine's network address, so anyone on the network "
                        "could reach it. "
                        "Next step: put 127.0.0.1 in front of the host port: -p 127.0.0.1:HOST:CONTAINER."
                    ),
                    details,
                )
        if serves:
            return CheckResult(True, "ok", passed_message(spec, question, run.moved), details)
        # A line that publishes only some other container port is diagnosed on that port: its
        # mistake is the container side of -p (wrong_container_port), not a missing -p.
        published = {p.container_port for p in self.engine.ports(container)}
        diagnosed = question.container_port if question.container_port in published or not published else None
        diagnosis = diagnose(
            self.engine,
            container,
            container_port=diagnosed,
            expect="jupyter" if question.expect == "jupyter" else "http",
            path=question.path,
        )
        details["diagnosis"] = diagnosis.to_dict()
        return CheckResult(
            False,
            diagnosis.cause if diagnosis.cause != "ok" else "wrong_answer",
            failed_message(diagnosis, question, ready),
            details,
        )

    def _settle(self, container: Container, question: RunQuestion) -> ProbeResult:
        """Wait until the server answers -- or until waiting cannot change the verdict.

        A wrong answer (a server bound to 127.0.0.1, a wrong container port) never becomes
        reachable, so waiting the whole readiness timeout for it would only slow grading down.
        Once something listens inside the container, or the container stopped, it has settled.
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
            if result.ok or self._listening(container):
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

    def _listening(self, container: Container) -> bool:
        """Whether anything listens on TCP inside the container (read from /proc, no tools needed)."""
        try:
            raw = self.engine.exec(container, list(LISTEN_COMMAND), timeout=5)
        except ContainerFailed:
            return False
        return bool(listeners_from_proc(*split_cat_output(raw.output)))

    def _answer_port_query(
        self, container: Container, spec: RunSpec, question: RunQuestion
    ) -> int | CheckResult:
        """Evaluate the learner's ``docker port NAME [PORT]`` against the real container."""
        query = question.port_query or ""
        try:
            words = shlex.split(query)
        except ValueError:
            return CheckResult(False, "invalid", f"The command {query!r} has an unclosed quote.")
        if words[:2] in (["docker", "port"], ["podman", "port"]):
            args = words[2:]
        elif words[:3] == ["docker", "container", "port"]:
            args = words[3:]
        else:
            return CheckResult(
                False,
                "wrong_answer",
                f"Expected a `docker port NAME CONTAINER_PORT` command, got {query!r}.",
                {"line": spec.to_cli()},
            )
        if not args or len(args) > 2:
            return CheckResult(
                False,
                "wrong_answer",
                "Expected `docker port NAME CONTAINER_PORT`: the container's "
                f"name, then the port inside it; got {query!r}.",
            )
        if spec.name is None:
            return CheckResult(
                False,
                "wrong_answer",
                "Your run line gives the container no --name, so your "
                "docker port command cannot name it. Next step: add --name lab to the run line "
                "and use `docker port lab 8888`.",
            )
        if args[0] != spec.name:
            return CheckResult(
                False,
                "wrong_answer",
                f"Your docker port command asks about '{args[0]}', but your "
                f"run line names the container '{spec.name}'. Next step: use the same name.",
            )
        wanted = args[1] if len(args) == 2 else None
        ports = self.engine.ports(container)
        if wanted is not None:
            number, _, protocol = wanted.partition("/")
            ports = [
                p for p in ports if str(p.container_port) == number and p.protocol == (protocol or "tcp")
            ]
        ipv4 = [p for p in ports if ":" not in p.host_ip]
        if not ipv4:
            return CheckResult(
                False,
                "wrong_answer",
                f"`{query}` prints nothing useful here: no host port is "
                f"published for {wanted or 'any port'}. Next step: ask for the container port the "
                f"server listens on ({question.container_port}).",
            )
        host_port = ipv4[0].host_port
        host = self.engine.publish_host
        result = wait_for(
            lambda: probe_http(f"http://{host}:{host_port}{question.path}", timeout=2.0), timeout=5.0
        )
        if not (result.ok and (question.expect != "jupyter" or is_jupyter(result))):
            return CheckResult(
                False,
                "wrong_answer",
                f"`{query}` points at host port {host_port}, but "
                f"{what(question)} does not answer there ({result.detail}). Next step: ask for "
                f"container port {question.container_port}.",
            )
        return host_port

    # ------------------------------------------------------------------------------ config files

    def _check_config(self, request: dict[str, Any]) -> CheckResult:
        line = config_line(text_field(request.get("line"), what="the config line", limit=300))
        image = text_field(request.get("image"), what="the image", limit=200)
        repository = image.rsplit(":", 1)[0] if image.rfind(":") > image.rfind("/") else image
        folder = CONFIG_IMAGES.get(repository)
        if folder is None:
            raise InvalidAnswer(f"check_config works on {', '.join(CONFIG_IMAGES)}, not {image!r}.")
        question = RunQuestion(
            line=line, container_port=8888, expect="jupyter", path=path_field(request.get("path", "/api"))
        )
        shipped = (images_dir() / folder / "jupyter_server_config.py").read_text()
        config = f"{shipped.rstrip()}\n\n# The learner's line, last so that it wins:\n{line}\n"
        dockerfile_text = f"FROM {image}\nCOPY jupyter_server_config.py {CONFIG_PATH}\n"
        tag = f"portbinding-grading/config:{self.engine.session}-{next(self._counter)}"
        with self._built(tag, dockerfile_text, {"jupyter_server_config.py": config.encode()}):
            spec = RunSpec(image=tag, publish=(PortMapping(8888, "tcp", "", free_port()),))
            run = _Run(spec.replace(name=f"pbl-{self.engine.session}-{next(self._counter)}", detach=True))
            container = self.engine.run(run.spec)
            with self._removed(container):
                result = self._judge(container, spec, question, run)
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
                image=tag, publish=(PortMapping(port, "tcp", "", free_port()),), env=(("PORT", str(port)),)
            )
            run = _Run(spec.replace(name=f"pbl-{self.engine.session}-{next(self._counter)}", detach=True))
            container = self.engine.run(run.spec)
            with self._removed(container):
                result = self._judge(container, spec, question, run)
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


def _move_ports(run: _Run, spec: RunSpec) -> None:
    """Give every fixed host port of ``spec`` a free one (a range becomes one port); keep random ones."""
    run.moved = {}
    publish: list[PortMapping] = []
    for mapping in spec.publish:
        port = mapping.host_port
        if port:
            port = run.occupied[port] if port in run.occupied else run.moved.setdefault(port, free_port())
        publish.append(PortMapping(mapping.container_port, mapping.protocol, mapping.host_ip, port or None))
    run.spec = run.spec.replace(publish=tuple(publish))


@contextmanager
def _held_port() -> Iterator[int]:
    """A host port that really is busy while the block runs (a listening socket on every address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


def _network_address() -> str | None:
    """This machine's address on its default route (connecting a UDP socket sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # TEST-NET-1: only the routing decision is used
        except OSError:
            return None
        address = str(sock.getsockname()[0])
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def _reachable_from_network(engine: Engine, container: Container, question: RunQuestion) -> str | None:
    """``host:port`` if the server also answers on this machine's network address, else None."""
    if engine.publish_host not in ("127.0.0.1", "localhost"):
        return None  # a remote engine: its network address is not ours to probe
    address = _network_address()
    port = engine.host_port(container, question.container_port)
    if address is None or port is None:
        return None
    result = probe_http(f"http://{address}:{port}{question.path}", timeout=2.0)
    return f"{address}:{port}" if result.reachable else None
