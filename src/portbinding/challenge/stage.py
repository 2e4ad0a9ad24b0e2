"""Starting a drawn challenge on the engine under neutral names, and removing it again.

Nothing a learner sees with ``docker ps`` or ``docker inspect`` may give the cause away: the
course images are called ``notebook-loopback`` and ``crash-before-listen`` and carry a
``portbinding.image.scenario`` label. So a challenge runs a derived image -- ``FROM`` the course
image with those labels emptied, built in about 0.1 s and cached by the engine -- tagged
``portbinding/challenge:<id>``, in a container called ``pbl-<id>``. What stays visible is what
a learner should read: the run line's ports, environment and command, the logs, the image's
own configuration files. (``docker history`` of the image still lists the course image's build
steps; that is a deliberate dig, not a glance.)

Every container a challenge starts carries the course labels and ``portbinding.challenge=<id>``;
``teardown`` removes exactly those, and staging removes them itself when it fails or is
interrupted. Containers are created and started here rather than with ``Engine.run`` because a
challenge needs two things it does not offer: extra labels, and -- for a host port that is
taken -- keeping the container that could not start, as ``docker run`` leaves it.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass

import docker.errors
from docker.models.containers import Container

from portbinding.challenge.draw import Draw, draw, port_free
from portbinding.command import RunSpec
from portbinding.engine import MEMORY_LIMIT, NAMED_LABEL, NANO_CPUS, PIDS_LIMIT, Engine
from portbinding.engine_errors import ENGINE_ERRORS, engine_stopped
from portbinding.errors import ContainerFailed, ImageMissing, PortInUse
from portbinding.ports import PortMapping, bracket_host, from_bindings, to_docker_ports
from portbinding.probe import ProbeResult, probe_http, wait_until

LOGGER = logging.getLogger(__name__)

CHALLENGE_LABEL = "portbinding.challenge"
CHALLENGE_REPO = "portbinding/challenge"
# The course images' own labels, emptied: the scenario label would name the cause.
NEUTRAL_LABELS = (
    "portbinding.image",
    "portbinding.image.scenario",
    "portbinding.image.version",
    "portbinding.image.context",
)
SETTLE_TIMEOUT_S = 60.0
_PORT_TAKEN = ("port is already allocated", "address already in use")


@dataclass(frozen=True)
class Staged:
    """A challenge running on the engine."""

    draw: Draw
    image: str  # the neutral image reference the broken container runs
    container: Container
    squatter: Container | None
    url: str
    observed: ProbeResult


def port_taken_error(text: str) -> bool:
    """True when an engine error (or a container's State.Error) says a host port is held."""
    return any(needle in text for needle in _PORT_TAKEN)


def neutral_image(engine: Engine, source: str, challenge_id: str) -> str:
    """Build ``source`` under a neutral name and labels; returns ``portbinding/challenge:<id>``."""
    try:
        engine.client.images.get(source)
    except docker.errors.ImageNotFound:
        short = source.rsplit("/", 1)[-1].split(":")[0]
        raise ImageMissing(
            f"The image {source} is not on this engine yet, so the challenge cannot start.",
            hint=f"build it with `portbinding images build {short}`",
        ) from None
    except ENGINE_ERRORS as exc:
        raise engine_stopped(exc) from exc
    labels = " ".join(f'{key}=""' for key in NEUTRAL_LABELS)
    dockerfile = f"FROM {source}\nLABEL {labels}\n".encode()
    tag = f"{CHALLENGE_REPO}:{challenge_id}"
    try:
        # No course labels on the image: a learner's own fix container inherits them, and a
        # course sweep would then remove it without asking.
        engine.client.images.build(fileobj=io.BytesIO(dockerfile), tag=tag, pull=False, rm=True)
    except docker.errors.BuildError as exc:
        raise ContainerFailed(f"Could not prepare the challenge's image from {source}: {exc.msg}") from exc
    except ENGINE_ERRORS as exc:
        raise engine_stopped(exc) from exc
    return tag


def create(engine: Engine, spec: RunSpec, *, challenge_id: str, name: str | None = None) -> Container:
    """Create (not start) a labelled, limited container for ``spec``."""
    labels = {**engine.labels, NAMED_LABEL: "0", CHALLENGE_LABEL: challenge_id}
    labels.update(dict.fromkeys(NEUTRAL_LABELS, ""))
    try:
        return engine.client.containers.create(
            spec.image,
            command=list(spec.command) or None,
            name=name,
            detach=True,
            ports=to_docker_ports(spec.publish),
            environment=dict(spec.env),
            labels=labels,
            mem_limit=MEMORY_LIMIT,
            pids_limit=PIDS_LIMIT,
            nano_cpus=NANO_CPUS,
        )
    except docker.errors.APIError as exc:
        raise ContainerFailed(
            f"The engine refused to create the challenge's container: {exc.explanation}"
        ) from exc
    except ENGINE_ERRORS as exc:
        raise engine_stopped(exc) from exc


def start(engine: Engine, container: Container, *, keep_if_port_taken: bool = False) -> None:
    """Start ``container``; a held host port raises PortInUse (the container stays if asked to)."""
    try:
        container.start()
    except docker.errors.APIError as exc:
        text = str(exc.explanation or exc)
        if port_taken_error(text) and keep_if_port_taken:
            return
        with contextlib.suppress(*ENGINE_ERRORS):
            container.remove(force=True)
        if port_taken_error(text):
            raise PortInUse(
                f"A host port of the challenge is taken: {text}", port=0, suggestion=None
            ) from exc
        raise ContainerFailed(f"The challenge's container could not start: {text}") from exc
    except ENGINE_ERRORS as exc:
        raise engine_stopped(exc) from exc


def stage(
    engine: Engine,
    challenge_id: str,
    *,
    seed: int | None = None,
    cause: str | Collection[str] | None = None,
    image: str | None = None,
    startup_delay: int | None = None,
    is_free: Callable[[int], bool] = port_free,
) -> Staged:
    """Draw a challenge and start it; on any failure or interrupt, nothing is left behind."""
    refused: set[int] = set()
    tag = ""
    try:
        for _ in range(5):
            drawn = draw(
                seed,
                cause=cause,
                image=image,
                startup_delay=startup_delay,
                is_free=lambda port: port not in refused and is_free(port),
            )
            tag = tag or neutral_image(engine, drawn.source_image, challenge_id)
            try:
                return _start_drawn(engine, drawn, tag, challenge_id)
            except PortInUse:
                LOGGER.info("host port %s was taken meanwhile: drawing the next one", drawn.host_port)
                refused.add(drawn.host_port)
                _remove_labelled(engine, challenge_id)
        raise ContainerFailed("Could not find a free host port for the challenge after 5 tries.")
    except BaseException:
        teardown(engine, challenge_id, tag or None)
        raise


def _start_drawn(engine: Engine, drawn: Draw, tag: str, challenge_id: str) -> Staged:
    host_ip = "127.0.0.1" if engine.publish_host in ("127.0.0.1", "localhost") else ""
    url = f"http://{bracket_host(engine.publish_host)}:{drawn.host_port}{drawn.expected.path}"
    squatter = None
    if drawn.squatter is not None:
        squatter = create(engine, _on(drawn.squatter, host_ip), challenge_id=challenge_id)
        start(engine, squatter)
        _settle(lambda: bool(engine.listeners(squatter)) or not engine.is_running(squatter))
    container = create(
        engine, drawn.run_spec(tag, host_ip=host_ip), challenge_id=challenge_id, name=f"pbl-{challenge_id}"
    )
    start(engine, container, keep_if_port_taken=drawn.settle.kind == "created")
    settle = drawn.settle
    if settle.kind == "listeners":
        _settle(
            lambda: len(engine.listeners(container)) >= settle.listeners or not engine.is_running(container)
        )
    elif settle.kind == "exited":
        _settle(lambda: not engine.is_running(container))
    elif settle.kind == "log":
        _settle(lambda: settle.log in engine.logs(container, tail=20))
    observed = probe_http(url, timeout=3.0)
    if drawn.expected.answers(observed):
        raise ContainerFailed(
            f"The fresh challenge already answers at {url}: this is a bug in the challenge {drawn.variant}."
        )
    return Staged(drawn, tag, container, squatter, url, observed)


def _on(spec: RunSpec, host_ip: str) -> RunSpec:
    publish = tuple(m.with_host_port(m.host_port, host_ip=host_ip) for m in spec.publish)
    return spec.replace(publish=publish)


def _settle(condition: Callable[[], bool]) -> None:
    if not wait_until(condition, timeout=SETTLE_TIMEOUT_S, first_interval=0.05, max_interval=0.25):
        LOGGER.warning("a challenge container did not settle within %.0f s", SETTLE_TIMEOUT_S)


def labelled(engine: Engine, challenge_id: str) -> list[Container]:
    """Every container this challenge started (running or not)."""
    try:
        return list(
            engine.client.containers.list(
                all=True, filters={"label": f"{CHALLENGE_LABEL}={challenge_id}"}, ignore_removed=True
            )
        )
    except ENGINE_ERRORS as exc:
        raise engine_stopped(exc) from exc


def _remove_labelled(engine: Engine, challenge_id: str) -> list[str]:
    removed = []
    for container in labelled(engine, challenge_id):
        engine.remove(container)
        removed.append(str(container.name))
    return removed


@dataclass(frozen=True)
class Teardown:
    """What ending a challenge removed, and what it left."""

    removed: list[str]
    image_kept: bool  # the neutral tag stays while a container (the learner's own) still uses it


def teardown(engine: Engine, challenge_id: str, image: str | None) -> Teardown:
    """Remove the challenge's labelled containers and its neutral image tag."""
    removed = _remove_labelled(engine, challenge_id)
    kept = False
    if image and _still_used(engine, image):
        # Challenges drawn from the same course image share one image id (the build is cached),
        # so removing this tag would only untag it -- no 409 -- while the learner's own
        # container still runs it; their paste-able line must keep working.
        return Teardown(removed, True)
    if image:
        try:
            engine.client.images.remove(image)
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.APIError as exc:  # 409: a container still uses it
            LOGGER.info("kept %s: %s", image, exc.explanation)
            kept = True
        except ENGINE_ERRORS as exc:
            raise engine_stopped(exc) from exc
    return Teardown(removed, kept)


def _still_used(engine: Engine, image: str) -> bool:
    """Whether any container, the learner's unlabelled ones included, was started from ``image``."""
    try:
        return bool(engine.client.containers.list(all=True, filters={"ancestor": image}, ignore_removed=True))
    except ENGINE_ERRORS as exc:
        raise engine_stopped(exc) from exc


def mapping_for(container: Container, host_port: int) -> PortMapping | None:
    """The mapping of ``container``'s run line that asks for ``host_port`` (running or not)."""
    bindings = (container.attrs.get("HostConfig") or {}).get("PortBindings") or {}
    return next((m for m in from_bindings(bindings) if m.host_port == host_port), None)
