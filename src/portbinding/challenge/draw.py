"""Drawing a challenge from a seed: which failure, which service (image), which ports.

A draw is pure: the same seed (and the same free ports) gives the same challenge, so an
instructor can hand out seeds, and a test can replay one. Without a seed one is chosen at
random, so two learners rarely get the same challenge. The cause is chosen first (each equally
likely), then one of the ways that cause can happen to one of the course's services, then the
numbers: the host port (20000-29999, the first free one from the drawn start), a wrong
container port, the app's own PORT, a start-up delay.
"""

from __future__ import annotations

import random
import secrets
import socket
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from portbinding.challenge.ladder import CHALLENGE_CAUSES, ChallengeCause
from portbinding.challenge.services import SERVICE_NAMES, Service, service
from portbinding.command import RunSpec
from portbinding.errors import UnknownName
from portbinding.ports import PortMapping

HOST_PORTS = range(20000, 30000)
# Long enough that a learner diagnoses it before it answers by itself; waiting is its fix.
STARTUP_DELAYS = range(90, 181, 15)


@dataclass(frozen=True)
class Settle:
    """What a freshly started challenge container must reach before the learner is handed it.

    ``listeners``: that many listening sockets inside (a half-started Jupyter would look like
    another failure); ``exited``: it has stopped; ``log``: this text is in its log; ``created``:
    it could not start (the host port is held) and stays Created, as `docker run` leaves it.
    """

    kind: str
    listeners: int = 0
    log: str = ""


@dataclass(frozen=True)
class Draw:
    """One drawn challenge, before anything runs."""

    seed: int
    cause: ChallengeCause
    service: str  # the service the URL must lead to (also the image family)
    variant: str
    source_image: str  # the course image the broken container runs (shown under a neutral name)
    host_port: int
    container_port: int | None  # the container side of -p; None when nothing is published
    listens_on: int  # where the app really listens inside (or would, once started)
    env: tuple[tuple[str, str], ...] = ()
    command: tuple[str, ...] = ()
    settle: Settle = field(default_factory=lambda: Settle("listeners", listeners=1))
    squatter: RunSpec | None = None  # port_taken: what holds the host port first

    @property
    def expected(self) -> Service:
        return service(self.service)

    def run_spec(self, image: str, *, host_ip: str = "127.0.0.1") -> RunSpec:
        """The broken container's run line, on ``image`` (the neutral name for the source image)."""
        publish: tuple[PortMapping, ...] = ()
        if self.container_port is not None:
            publish = (PortMapping(self.container_port, "tcp", host_ip, self.host_port),)
        return RunSpec(image=image, publish=publish, env=self.env, detach=True, command=self.command)


@dataclass(frozen=True)
class _Made:
    source_image: str
    container_port: int | None
    listens_on: int
    env: tuple[tuple[str, str], ...] = ()
    command: tuple[str, ...] = ()
    settle: Settle = field(default_factory=lambda: Settle("listeners", listeners=1))
    squatter: tuple[str, int, tuple[tuple[str, str], ...]] | None = None  # image, container port, env


@dataclass(frozen=True)
class Variant:
    """One way a cause can happen to one service."""

    id: str
    cause: ChallengeCause
    service: str
    make: Callable[[random.Random, int | None], _Made]  # (rng, startup delay override) -> numbers


NOTEBOOK = "portbinding/notebook:1.0"
NOTEBOOK_LOOPBACK = "portbinding/notebook-loopback:1.0"
SCORING = "portbinding/scoring-api:1.0"
CHURN = "portbinding/crash-before-listen:1.0"
MODEL_SERVER = "portbinding/slow-start:1.0"
MODEL_PATH = ("MODEL_PATH", "/app/model.json")
WRONG_PORTS = (80, 5000, 8000, 8080, 8088, 8889, 9999)


def _port_env(port: int) -> tuple[tuple[str, str], ...]:
    return () if port == 8000 else (("PORT", str(port)),)


def _other(rng: random.Random, avoid: int, pool: tuple[int, ...] = WRONG_PORTS) -> int:
    return rng.choice([p for p in pool if p != avoid])


# A service other than the one expected, to squat on the host port (light ones: no Jupyter).
_SQUATTERS: dict[str, tuple[str, int, tuple[tuple[str, str], ...]]] = {
    "scoring-api": (SCORING, 8000, ()),
    "churn-model": (CHURN, 8000, (MODEL_PATH,)),
    "model-server": (MODEL_SERVER, 8000, (("STARTUP_DELAY", "0"),)),
}


def _squatter_for(expected: str, rng: random.Random) -> tuple[str, int, tuple[tuple[str, str], ...]]:
    return _SQUATTERS[rng.choice(sorted(name for name in _SQUATTERS if name != expected))]


def _loopback_notebook(rng: random.Random, delay: int | None) -> _Made:
    return _Made(NOTEBOOK_LOOPBACK, 8888, 8888)


def _loopback_scoring(rng: random.Random, delay: int | None) -> _Made:
    port = rng.choice((8000, 8000, 8080, 5000))
    return _Made(SCORING, port, port, (*_port_env(port), ("BIND_HOST", "127.0.0.1")))


def _wrongport_notebook(rng: random.Random, delay: int | None) -> _Made:
    return _Made(NOTEBOOK, _other(rng, 8888), 8888)


def _wrongport_scoring_env(rng: random.Random, delay: int | None) -> _Made:
    # The image EXPOSEs 8000 and -p says 8000 -- but PORT moved the app: a 12-factor trap.
    port = rng.choice((5000, 8080, 9000))
    return _Made(SCORING, 8000, port, _port_env(port))


def _wrongport_churn(rng: random.Random, delay: int | None) -> _Made:
    return _Made(CHURN, _other(rng, 8000), 8000, (MODEL_PATH,))


def _unpublished(image: str, port: int, env: tuple[tuple[str, str], ...] = ()) -> Callable[..., _Made]:
    def make(rng: random.Random, delay: int | None) -> _Made:
        return _Made(image, None, port, env)

    return make


def _crashed_churn(rng: random.Random, delay: int | None) -> _Made:
    return _Made(CHURN, 8000, 8000, settle=Settle("exited"))


def _starting_model(rng: random.Random, delay: int | None) -> _Made:
    seconds = delay if delay is not None else rng.choice(STARTUP_DELAYS)
    return _Made(
        MODEL_SERVER, 8000, 8000, (("STARTUP_DELAY", str(seconds)),), settle=Settle("log", log="loading")
    )


def _wrongservice_notebook(rng: random.Random, delay: int | None) -> _Made:
    port = rng.choice((8890, 9000, 9999))
    return _Made(NOTEBOOK, 8888, port, (("HOLD_PORT", "8888"),), (f"--port={port}",), Settle("listeners", 2))


def _retried_notebook(rng: random.Random, delay: int | None) -> _Made:
    return _Made(NOTEBOOK, 8888, 8889, (("HOLD_PORT", "8888"),), settle=Settle("listeners", 2))


def _taken(
    image: str, port: int, service_name: str, env: tuple[tuple[str, str], ...] = ()
) -> Callable[..., _Made]:
    def make(rng: random.Random, delay: int | None) -> _Made:
        return _Made(
            image, port, port, env, settle=Settle("created"), squatter=_squatter_for(service_name, rng)
        )

    return make


VARIANTS: tuple[Variant, ...] = (
    Variant("loopback-notebook", "loopback_only", "notebook", _loopback_notebook),
    Variant("loopback-scoring", "loopback_only", "scoring-api", _loopback_scoring),
    Variant("wrongport-notebook", "wrong_container_port", "notebook", _wrongport_notebook),
    Variant("wrongport-scoring-env", "wrong_container_port", "scoring-api", _wrongport_scoring_env),
    Variant("wrongport-churn", "wrong_container_port", "churn-model", _wrongport_churn),
    Variant("unpublished-notebook", "not_published", "notebook", _unpublished(NOTEBOOK, 8888)),
    Variant("unpublished-scoring", "not_published", "scoring-api", _unpublished(SCORING, 8000)),
    Variant("unpublished-churn", "not_published", "churn-model", _unpublished(CHURN, 8000, (MODEL_PATH,))),
    Variant("crashed-churn", "crashed", "churn-model", _crashed_churn),
    Variant("starting-model", "still_starting", "model-server", _starting_model),
    Variant("wrongservice-notebook", "wrong_service", "notebook", _wrongservice_notebook),
    Variant("retried-notebook", "port_retried", "notebook", _retried_notebook),
    Variant("taken-notebook", "port_taken", "notebook", _taken(NOTEBOOK, 8888, "notebook")),
    Variant("taken-scoring", "port_taken", "scoring-api", _taken(SCORING, 8000, "scoring-api")),
    Variant("taken-churn", "port_taken", "churn-model", _taken(CHURN, 8000, "churn-model", (MODEL_PATH,))),
)


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing holds ``port`` on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def first_free(start: int, *, is_free: Callable[[int], bool] = port_free) -> int:
    """``start`` or the next free port after it (wrapping round the challenge range)."""
    span = len(HOST_PORTS)
    for step in range(span):
        candidate = HOST_PORTS.start + (start - HOST_PORTS.start + step) % span
        if is_free(candidate):
            return candidate
    raise UnknownName("No host port between 20000 and 29999 is free on this machine.", hint="free some ports")


def draw(
    seed: int | None = None,
    *,
    cause: str | Collection[str] | None = None,
    image: str | None = None,
    startup_delay: int | None = None,
    is_free: Callable[[int], bool] = port_free,
) -> Draw:
    """Draw a challenge from ``seed`` (random when None), optionally of one ``cause`` (or one of
    several) and one ``image``.

    ``startup_delay`` overrides the drawn start-up delay of a still-starting server (tests use
    a short one so that waiting, its fix, does not take minutes).
    """
    causes = None if cause is None else ({cause} if isinstance(cause, str) else set(cause))
    for name in sorted(causes or ()):
        if name not in CHALLENGE_CAUSES:
            raise UnknownName(
                f"There is no challenge cause called {name!r}.",
                hint=f"choose one of: {', '.join(CHALLENGE_CAUSES)}",
            )
    if image is not None and image not in SERVICE_NAMES:
        raise UnknownName(
            f"There is no challenge image called {image!r}.",
            hint=f"choose one of: {', '.join(SERVICE_NAMES)}",
        )
    pool = [v for v in VARIANTS if (causes is None or v.cause in causes) and image in (None, v.service)]
    if not pool:
        pairs = sorted(
            {f"{v.cause} on {v.service}" for v in VARIANTS if v.cause in (causes or ()) or v.service == image}
        )
        raise UnknownName(
            f"No challenge has the cause {' or '.join(sorted(causes or ()))} on the image {image!r}.",
            hint=f"possible: {'; '.join(pairs)}",
        )
    seed = secrets.randbelow(2**31) if seed is None else int(seed)
    rng = random.Random(seed)
    chosen_cause = rng.choice(sorted({v.cause for v in pool}))
    variant = rng.choice([v for v in pool if v.cause == chosen_cause])
    host_port = first_free(rng.randrange(HOST_PORTS.start, HOST_PORTS.stop), is_free=is_free)
    made = variant.make(rng, startup_delay)
    squatter = None
    if made.squatter is not None:
        squat_image, squat_port, squat_env = made.squatter
        squatter = RunSpec(
            image=squat_image,
            publish=(PortMapping(squat_port, "tcp", "127.0.0.1", host_port),),
            env=squat_env,
            detach=True,
        )
    return Draw(
        seed=seed,
        cause=variant.cause,
        service=variant.service,
        variant=variant.id,
        source_image=made.source_image,
        host_port=host_port,
        container_port=made.container_port,
        listens_on=made.listens_on,
        env=made.env,
        command=made.command,
        settle=made.settle,
        squatter=squatter,
    )
