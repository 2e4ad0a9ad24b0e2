"""The course's door to a container engine, over the Docker Engine API (Docker or Podman).

Every container the course starts is labelled with the course and a session id, limited in
memory, processes and CPU, and removed by its owner -- ``with Engine.connect() as engine:``
removes the session's containers on exit, after errors and interrupts too, and ``cleanup()``
sweeps anything a crashed session left behind.

docker-py's ``containers.run()`` is create + start with no cleanup: a failed start (a port
already allocated) leaves a Created container behind. ``Engine.run`` creates, starts, and
removes the container itself when the start fails.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container

from portbinding import settings
from portbinding.command import RunSpec
from portbinding.discovery import EngineInfo, find_engine
from portbinding.dockerjson import ContainerState, container_inspect
from portbinding.engine_errors import (
    ENGINE_ERRORS,
    conflicting_port,
    create_error,
    engine_stopped,
    explanation,
)
from portbinding.errors import (
    ContainerFailed,
    ContainerNotFound,
    EngineError,
    ImageMissing,
    PortInUse,
)
from portbinding.images import short_name
from portbinding.networks import create_container, placement, remove_networks
from portbinding.ports import bracket_host, to_docker_ports
from portbinding.procnet import LISTEN_COMMAND, Listener, listeners_from_proc, split_cat_output

LOGGER = logging.getLogger(__name__)

COURSE_LABEL = "portbinding.course"
COURSE = "port-binding-lab"
SESSION_LABEL = "portbinding.session"
OWNER_LABEL = "portbinding.owner"
# "1" when the run line named the container: a diagnosis keeps the name in its fix only then.
NAMED_LABEL = "portbinding.named"
RUN_LABEL = "portbinding.run"

# Enough for a Jupyter Server; small enough that a runaway exercise cannot hurt the host.
MEMORY_LIMIT = "512m"
PIDS_LIMIT = 128
NANO_CPUS = 1_000_000_000  # one CPU


@dataclass(frozen=True)
class PublishedPort:
    """One published port as the engine reports it (``docker port``)."""

    container_port: int
    protocol: str
    host_ip: str
    host_port: int

    def __str__(self) -> str:
        return f"{self.container_port}/{self.protocol} -> {bracket_host(self.host_ip)}:{self.host_port}"


@dataclass(frozen=True)
class ExecResult:
    """The outcome of a command run inside a container."""

    exit_code: int
    output: str
    timed_out: bool = False


def free_port(host: str = "127.0.0.1") -> int:
    """A host port nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def preferred_port(port: int, host: str = "127.0.0.1") -> int:
    """``port`` if nothing holds it on ``host`` right now, else a free one.

    Lessons show the classic ``-p 8888:8888`` where they can, without failing on a machine
    where 8888 is taken (by another notebook server, say).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return free_port(host)
    return port


class Engine:
    """A session on a container engine: runs, inspects and removes the course's containers."""

    def __init__(
        self,
        client: docker.DockerClient,
        info: EngineInfo,
        *,
        session: str | None = None,
        owner: str = "lesson",
    ) -> None:
        self.client = client
        self.info = info
        self.session = session or uuid.uuid4().hex[:12]
        self.owner = owner
        self._owns_client = False  # a client handed in stays open for whoever handed it in

    @classmethod
    def connect(cls, *, session: str | None = None, owner: str = "lesson") -> Engine:
        """Connect to the first engine that answers (see ``portbinding.discovery``)."""
        client, info = find_engine()
        engine = cls(client, info, session=session, owner=owner)
        engine._owns_client = True
        return engine

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Cleanup must never mask the error that ended the block; a failure here is logged.
        try:
            self.cleanup(session=self.session)
        except EngineError as error:
            LOGGER.warning("could not remove the session's containers: %s", error)
        self.close()

    def close(self) -> None:
        """Close the connection this Engine opened (``Engine.connect``); its containers stay.

        Ending the session -- removing its containers -- is :meth:`cleanup`; ``with`` does both.
        A client handed in to the constructor stays open for whoever handed it in. Idempotent.
        """
        if self._owns_client:
            self._owns_client = False
            self.client.close()

    @property
    def publish_host(self) -> str:
        """Where this engine's published ports are reached from here."""
        return self.info.publish_host

    @property
    def _ps_command(self) -> str:
        """The CLI a learner on this engine uses to list containers (the course's, without one)."""
        return {"docker": "docker", "podman": "podman"}.get(self.info.kind, "portbinding")

    @property
    def labels(self) -> dict[str, str]:
        labels = {COURSE_LABEL: COURSE, SESSION_LABEL: self.session, OWNER_LABEL: self.owner}
        # A test run (or a grading run) marks everything started under it, lesson kernels
        # included, so it can tell its own leftovers from those of a run beside it.
        if settings.run_id():
            labels[RUN_LABEL] = settings.run_id()
        return labels

    # ------------------------------------------------------------------------------ running

    def run(self, spec: RunSpec, *, confinement: Mapping[str, Any] | None = None) -> Container:
        """Create and start a container for ``spec``; nothing is left behind if the start fails.

        ``confinement`` adds (or overrides) docker-py create options: the grader's hardening
        (``portbinding.grading.confine``), never anything a learner wrote.
        """
        self._require_image(spec.image)
        # The network a line names (lesson 07), with its aliases; a graded container is placed by
        # its confinement alone.
        placed = {} if confinement else placement(self.client, spec)
        try:
            container = create_container(
                self.client,
                spec.image,
                command=list(spec.command) or None,
                name=spec.name,
                detach=True,
                ports=to_docker_ports(spec.publish),
                publish_all_ports=spec.publish_all,
                environment=dict(spec.env),
                labels={**self.labels, NAMED_LABEL: "1" if spec.name else "0"},
                auto_remove=spec.remove,
                mem_limit=MEMORY_LIMIT,
                pids_limit=PIDS_LIMIT,
                nano_cpus=NANO_CPUS,
                **placed,
                **(confinement or {}),
            )
        except docker.errors.APIError as exc:
            raise create_error(spec, exc) from exc
        except docker.errors.InvalidArgument as exc:  # refused by docker-py itself: no engine involved
            raise ContainerFailed(f"The container could not be created: {exc}") from exc
        except ENGINE_ERRORS as exc:
            raise engine_stopped(exc) from exc
        try:
            container.start()
        except docker.errors.APIError as exc:
            with contextlib.suppress(*ENGINE_ERRORS):
                container.remove(force=True)
            raise self._start_error(spec, exc) from exc
        except ENGINE_ERRORS as exc:
            with contextlib.suppress(*ENGINE_ERRORS):
                container.remove(force=True)
            raise engine_stopped(exc) from exc
        LOGGER.info("started %s (%s)", container.name, spec.to_cli())
        return container

    def _require_image(self, image: str) -> None:
        try:
            self.client.images.get(image)
        except docker.errors.ImageNotFound:
            raise ImageMissing(
                f"The image {image} is not on this engine yet.",
                hint=f"build it with `portbinding images build {short_name(image)}` "
                "(or the build button in lesson 00)",
            ) from None
        except ENGINE_ERRORS as exc:
            raise engine_stopped(exc) from exc

    def _start_error(self, spec: RunSpec, exc: docker.errors.APIError) -> ContainerFailed | PortInUse:
        text = explanation(exc)
        if "port is already allocated" in text or "address already in use" in text:
            port = conflicting_port(text, spec)
            suggestion = free_port()
            return PortInUse(
                f"Host port {port} is already taken, so the container could not publish on it "
                f"(the engine said: {text.strip()}).",
                port=port,
                suggestion=suggestion,
                hint=f"publish on a free host port instead, e.g. -p {suggestion}:<container port>, or "
                f"stop whatever holds {port} (`{self._ps_command} ps` shows the containers publishing it)",
            )
        if "privileged port" in text:
            # Rootless engines (Podman's rootlessport, rootless Docker's RootlessKit) listen as an
            # ordinary user, who may not bind host ports below 1024 unless the sysctl allows it.
            port = conflicting_port(text, spec)
            suggestion = preferred_port(port + 8000) if 0 < port < 1024 else free_port()
            return ContainerFailed(
                f"Host port {port} is below 1024, and this rootless engine publishes ports as an "
                f"ordinary user, who may not listen there (the engine said: {text.strip()}).",
                hint=f"publish on a host port of 1024 or above instead, e.g. -p {suggestion}:<container "
                "port>; an administrator could lower net.ipv4.ip_unprivileged_port_start instead",
            )
        return ContainerFailed(
            f"The container was created but could not start: {text}",
            hint="read the message above; the container was removed",
        )

    # ------------------------------------------------------------------------------ looking

    def get(self, name_or_id: str) -> Container:
        """The container called ``name_or_id`` (any container, not only the course's)."""
        try:
            return self.client.containers.get(name_or_id)
        except (docker.errors.NotFound, docker.errors.NullResource):  # NullResource: an empty name
            raise ContainerNotFound(
                f"There is no container called {name_or_id!r}.",
                hint="`portbinding ps` (or `docker ps -a`) lists the containers that exist",
            ) from None
        except ENGINE_ERRORS as exc:
            raise engine_stopped(exc) from exc

    def ports(self, container: Container) -> list[PublishedPort]:
        """The container's published ports, as ``docker port`` shows them."""
        self._reload(container)
        published = []
        for key, bindings in (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).items():
            port, _, protocol = key.partition("/")
            for binding in bindings or []:
                published.append(
                    PublishedPort(
                        int(port), protocol or "tcp", binding.get("HostIp", ""), int(binding["HostPort"])
                    )
                )
        return sorted(published, key=lambda p: (p.container_port, p.protocol, p.host_ip))

    def host_port(self, container: Container, container_port: int, *, protocol: str = "tcp") -> int | None:
        """The host port published for ``container_port`` (IPv4 preferred), or None."""
        matches = [
            p for p in self.ports(container) if p.container_port == container_port and p.protocol == protocol
        ]
        matches.sort(key=lambda p: ":" in p.host_ip)
        return matches[0].host_port if matches else None

    def url(self, container: Container, container_port: int, path: str = "/") -> str | None:
        """The URL a learner on this machine would open for ``container_port``, if published.

        A port published on every address is reached at ``publish_host``; one published on a
        single address of a local engine (``-p [::1]:H:C``) only there.
        """
        bindings = [
            p for p in self.ports(container) if p.container_port == container_port and p.protocol == "tcp"
        ]
        if not bindings:
            return None
        chosen = sorted(bindings, key=lambda p: ":" in p.host_ip)[0]  # IPv4 first
        host = self.publish_host
        if chosen.host_ip not in ("", "0.0.0.0", "::") and host in ("127.0.0.1", "localhost"):
            host = chosen.host_ip
        return f"http://{bracket_host(host)}:{chosen.host_port}{path}"

    def logs(self, container: Container, *, tail: int = 200) -> str:
        """The last ``tail`` lines of the container's output (stdout and stderr)."""
        try:
            return bytes(container.logs(tail=tail)).decode(errors="replace")
        except docker.errors.NotFound:
            raise ContainerNotFound(
                f"The container {container.name} is gone, and its logs with it.",
                hint="run it without --rm to keep its logs after it exits",
            ) from None
        except ENGINE_ERRORS as exc:
            raise engine_stopped(exc) from exc

    def stream_logs(self, container: Container) -> Iterator[str]:
        """Lines of output as the container writes them, until it stops."""
        try:
            pending = ""
            for chunk in container.logs(stream=True, follow=True):
                pending += bytes(chunk).decode(errors="replace")
                *lines, pending = pending.split("\n")
                yield from lines
            if pending:
                yield pending
        except docker.errors.NotFound:
            return
        except ENGINE_ERRORS as exc:
            raise engine_stopped(exc) from exc

    def listeners(self, container: Container) -> list[Listener]:
        """The TCP sockets listening inside ``container`` ([] when it is not running).

        Read from the kernel's own tables (/proc/net/tcp and tcp6), so slim images need no tools.
        """
        try:
            return self.read_listeners(container)[0]
        except ContainerFailed:
            return []

    def read_listeners(self, container: Container) -> tuple[list[Listener], ExecResult]:
        """The listening sockets and the exec's own result, so a caller can tell an image without
        ``cat`` (the diagnosis then looks in another way) from one where nothing listens.

        Raises:
            ContainerFailed: the container is not running.
        """
        raw = self.exec(container, list(LISTEN_COMMAND), timeout=5)
        return listeners_from_proc(*split_cat_output(raw.output)), raw

    def state(self, container: Container) -> ContainerState:
        """The container's State block (Status, ExitCode, Health, StartedAt, ...)."""
        self._reload(container)
        return (container_inspect(container.attrs).get("State") or ContainerState()).copy()

    def is_running(self, container: Container) -> bool:
        """Whether the container is still running (False once it exited or was removed)."""
        try:
            return self.state(container).get("Status") == "running"
        except ContainerNotFound:
            return False

    def exec(self, container: Container, command: list[str], *, timeout: float = 10.0) -> ExecResult:
        """Run ``command`` inside the container; it is killed after ``timeout`` seconds.

        The Engine API's exec has no timeout of its own, so the command runs under coreutils'
        ``timeout`` where the image has it (exit 124 means it was killed).
        """
        wrapped = ["timeout", "-s", "KILL", f"{timeout:g}", *command]
        result = self._exec_bounded(container, wrapped, timeout)
        if result.exit_code in (126, 127) and "timeout" in result.output and "not found" in result.output:
            result = self._exec_bounded(container, command, timeout)  # an image without coreutils
        if result.exit_code in (124, 137):
            return ExecResult(result.exit_code, result.output, timed_out=True)
        return result

    def _exec_bounded(self, container: Container, command: list[str], timeout: float) -> ExecResult:
        """``_exec`` with a backstop: the caller gets an answer after ``timeout`` plus a margin.

        The in-container ``timeout`` normally ends the command; where the image has none, the
        exec is left to finish in a daemon thread and reported as timed out.
        """
        outcome: list[ExecResult] = []
        failure: list[BaseException] = []

        def run() -> None:
            try:
                outcome.append(self._exec(container, command))
            except BaseException as exc:  # handed to the caller's thread below
                failure.append(exc)

        worker = threading.Thread(target=run, name="portbinding-exec", daemon=True)
        worker.start()
        worker.join(timeout + 5)
        if failure:
            raise failure[0]
        if not outcome:
            return ExecResult(137, f"no answer within {timeout:g} s", timed_out=True)
        return outcome[0]

    def _exec(self, container: Container, command: list[str]) -> ExecResult:
        try:
            code, output = container.exec_run(command, demux=False)
        except docker.errors.NotFound:
            raise ContainerNotFound(
                f"The container {container.name} is gone.",
                hint="start it again; `portbinding ps` lists what is running",
            ) from None
        except docker.errors.APIError as exc:
            text = explanation(exc)
            if "is not running" in text:
                raise ContainerFailed(
                    f"The container {container.name} is not running, so nothing can run inside it.",
                    hint="read its logs to see why it stopped",
                ) from None
            return ExecResult(127, text)
        except ENGINE_ERRORS as exc:
            raise engine_stopped(exc) from exc
        return ExecResult(
            int(code if code is not None else -1), bytes(output or b"").decode(errors="replace")
        )

    # ------------------------------------------------------------------------------ ending

    def stop(self, container: Container, *, timeout: int = 5) -> None:
        """Stop the container (SIGTERM, then SIGKILL after ``timeout`` seconds)."""
        with contextlib.suppress(docker.errors.NotFound):
            try:
                container.stop(timeout=timeout)
            except docker.errors.APIError as exc:
                if "no such container" in explanation(exc).lower():
                    return  # removed by someone else meanwhile
                raise ContainerFailed(f"Could not stop {container.name}: {explanation(exc)}") from exc
            except ENGINE_ERRORS as exc:
                raise engine_stopped(exc) from exc

    def remove(self, container: Container) -> None:
        """Remove the container, running or not; a container already gone is fine."""
        with contextlib.suppress(docker.errors.NotFound):
            try:
                container.remove(force=True)
            except docker.errors.APIError as exc:
                # Removed by someone else meanwhile: the engine may say so without a 404.
                if (
                    "already in progress" in explanation(exc)
                    or "no such container" in explanation(exc).lower()
                ):
                    return
                raise ContainerFailed(f"Could not remove {container.name}: {explanation(exc)}") from exc
            except ENGINE_ERRORS as exc:
                raise engine_stopped(exc) from exc

    def course_containers(self, *, session: str | None = None) -> list[Container]:
        """Every course-labelled container (of one session, if given), running or not."""
        label = [f"{COURSE_LABEL}={COURSE}"]
        if session:
            label.append(f"{SESSION_LABEL}={session}")
        try:
            return list(self.client.containers.list(all=True, filters={"label": label}))
        except ENGINE_ERRORS as exc:
            raise engine_stopped(exc) from exc

    def cleanup(self, session: str | None = None) -> list[str]:
        """Remove every course container (of ``session`` only, if given), then the course networks
        they were on (lesson 07's); returns the containers' names."""
        removed = []
        for container in self.course_containers(session=session):
            self.remove(container)
            removed.append(str(container.name))
        label = [f"{COURSE_LABEL}={COURSE}", *([f"{SESSION_LABEL}={session}"] if session else [])]
        remove_networks(self.client, label)
        return removed

    def _reload(self, container: Container) -> None:
        try:
            container.reload()
        except docker.errors.NotFound:
            raise ContainerNotFound(
                f"The container {container.name} is gone (it may have been run with --rm).",
                hint="`portbinding ps` lists the containers that exist",
            ) from None
        except ENGINE_ERRORS as exc:
            raise engine_stopped(exc) from exc
