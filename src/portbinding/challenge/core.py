"""A challenge: a broken container drawn from a seed, a URL to make reachable, a live checker.

The learner is told the URL (a host port and the service expected there), the container meant
to serve it, and what a GET there shows now -- nothing that names the cause. They look rung by
rung, commit to a layer and a cause (hints stay locked until they have), and fix it any way
they like. ``check``/``watch`` probe the URL from the host and call it solved when, and only
when, the expected service answers there: a new container started with the plain ``docker``
CLI counts; restarting the same broken container, or another service on that port, does not.
(A still-starting server is the one case where the same container does come good: waiting is
its fix.)

The state lives in a file (``store``), so every CLI call and the widget drive the same
challenge; each change re-reads the file under a lock, so a widget and a terminal can share one.
"""

from __future__ import annotations

import contextlib
import fcntl
import secrets
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portbinding.challenge import hints, store
from portbinding.challenge.attempt import MAX_HINTS, Attempt
from portbinding.challenge.ladder import CAUSE_WORDS, CHALLENGE_CAUSES, LAYERS, RUNGS, Layer, cli_program
from portbinding.challenge.rungs import RungView, curl_says, look
from portbinding.challenge.services import Service, service
from portbinding.challenge.stage import CHALLENGE_LABEL, labelled, mapping_for, stage, teardown
from portbinding.engine import Engine
from portbinding.engine_errors import ENGINE_ERRORS, engine_stopped
from portbinding.errors import ContainerNotFound, PortBindingError
from portbinding.probe import ProbeResult, probe_http, wait_until

CHECK_TIMEOUT_S = 2.0
# The watcher's pace: a probe of a closed or resetting port costs well under a millisecond,
# so asking ten times a second keeps the lag to "solved" far below the 1 s promised.
WATCH_INTERVAL_S = 0.1
# While a container is being wired up, docker-proxy can accept and then wait a full second for
# the container's SYN to be answered (TCP's first retransmit): a watcher with a long probe
# timeout would sit that out. A short one gives up and asks again.
WATCH_PROBE_TIMEOUT_S = 0.5


@dataclass(frozen=True)
class Check:
    """What one look at the challenge's URL found."""

    solved: bool
    url: str
    result: ProbeResult
    why: str  # for the learner: what answered, and why that does (not) count
    solved_at: float | None
    started_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "solved": self.solved,
            "url": self.url,
            "outcome": self.result.outcome,
            "http_status": self.result.http_status,
            "detail": self.result.detail,
            "why": self.why,
            "time_to_fix_s": round(self.solved_at - self.started_at, 3) if self.solved_at else None,
        }


@dataclass(frozen=True)
class Ending:
    """What ending a challenge removed and what it left to the learner."""

    removed: list[str]
    yours: list[str] = field(default_factory=list)  # the learner's own containers still on the port/image
    advice: str = ""
    record: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"removed": self.removed, "yours": self.yours, "advice": self.advice, "record": self.record}


class Challenge:
    """One challenge in progress (see the module docstring)."""

    def __init__(self, engine: Engine, attempt: Attempt, *, folder: Path | None = None) -> None:
        self.engine = engine
        self._attempt = attempt
        self._folder = folder
        self._lock = threading.RLock()

    # ------------------------------------------------------------------------------ starting

    @classmethod
    def new(
        cls,
        engine: Engine,
        *,
        seed: int | None = None,
        cause: str | Collection[str] | None = None,
        image: str | None = None,
        startup_delay: int | None = None,
        folder: Path | None = None,
    ) -> Challenge:
        """Draw a challenge and start it (a few seconds: a Jupyter takes about three to listen)."""
        challenge_id = secrets.token_hex(3)
        staged = stage(engine, challenge_id, seed=seed, cause=cause, image=image, startup_delay=startup_delay)
        drawn = staged.draw
        expected = drawn.expected
        attempt = Attempt(
            id=challenge_id,
            learner=store.learner(),
            seed=drawn.seed,
            cause=drawn.cause,
            service=drawn.service,
            variant=drawn.variant,
            host_port=drawn.host_port,
            url=staged.url,
            container=str(staged.container.name),
            image=staged.image,
            started_at=time.time(),
            squatter=str(staged.squatter.name) if staged.squatter is not None else "",
            engine_kind=engine.info.kind,
        )
        attempt.told = _told(attempt, expected, staged.observed)
        try:
            store.save(attempt, folder)
        except BaseException:
            teardown(engine, challenge_id, staged.image)
            raise
        return cls(engine, attempt, folder=folder)

    @classmethod
    def load(cls, engine: Engine, challenge_id: str, *, folder: Path | None = None) -> Challenge:
        """The challenge saved under ``challenge_id`` (started by the CLI or a widget)."""
        return cls(engine, store.load(challenge_id, folder), folder=folder)

    # ------------------------------------------------------------------------------ reading

    @property
    def id(self) -> str:
        return self._attempt.id

    @property
    def attempt(self) -> Attempt:
        return self._attempt

    @property
    def url(self) -> str:
        return self._attempt.url

    @property
    def expected(self) -> Service:
        return service(self._attempt.service)

    @property
    def told(self) -> dict[str, Any]:
        """What the learner is told: the URL, the service, the container, what a GET shows now."""
        return dict(self._attempt.told)

    @property
    def ended(self) -> bool:
        return self._attempt.ended_at is not None

    # ------------------------------------------------------------------------------ checking

    def check(self, *, timeout: float = CHECK_TIMEOUT_S, via: str = "cli") -> Check:
        """Probe the URL once from the host; solved when the expected service answers."""
        result = probe_http(self.url, timeout=timeout)
        solved = self.expected.answers(result)
        if solved and self._attempt.solved_at is None:
            self._mutate(lambda a: a.solved(at=time.time(), via=via), record=True)
        return self._check_from(result, solved)

    def watch(
        self,
        *,
        timeout: float,
        stop: threading.Event | None = None,
        on_check: Callable[[Check], None] | None = None,
        via: str = "watcher",
    ) -> Check:
        """Check until solved, ``timeout`` seconds pass, or ``stop`` is set; returns the last check."""
        checks: list[Check] = []
        stop = stop or threading.Event()

        def solved() -> bool:
            checks.append(self.check(timeout=WATCH_PROBE_TIMEOUT_S, via=via))
            if on_check is not None:
                on_check(checks[-1])
            return checks[-1].solved

        wait_until(
            solved,
            timeout=timeout,
            alive=lambda: not stop.is_set(),
            first_interval=WATCH_INTERVAL_S / 4,
            max_interval=WATCH_INTERVAL_S,
        )
        return checks[-1]

    def _check_from(self, result: ProbeResult, solved: bool) -> Check:
        expected = self.expected
        said = curl_says(result).replace("\n", " ")[:200]
        if solved:
            why = f"{expected.title} answers at {self.url}: {said}"
        elif result.http_status is not None:
            why = f"something answers at {self.url}, but not as {expected.title} ({expected.says}): {said}"
        else:
            why = f"{expected.title} does not answer at {self.url} yet: {said}"
        return Check(solved, self.url, result, why, self._attempt.solved_at, self._attempt.started_at)

    # ------------------------------------------------------------------------------ the learner's steps

    def look(self, layer: str, *, via: str = "cli") -> RungView:
        """Look at one rung of the container meant to serve the URL (recorded with its time)."""
        rung = layer_of(layer)
        self._mutate(lambda a: a.look(rung, at=time.time(), via=via))
        return look(
            self.engine,
            rung,
            self._subject(),
            url=self.url,
            host_port=self._attempt.host_port,
            expected=self.expected,
        )

    def commit(self, layer: str, cause: str, *, via: str = "cli") -> dict[str, Any]:
        """Commit to a failing layer and a cause; recorded before anything is revealed."""
        self._mutate(lambda a: a.commit(layer, cause, at=time.time(), via=via))
        return {
            "committed": {"layer": layer, "cause": cause},
            "commits": len(self._attempt.commits),
            "next": "fix it any way you like; `portbinding challenge hint ID` now gives hints, one at a time",
        }

    def hint(self, *, via: str = "cli") -> hints.Hint:
        """The next hint, built from the diagnosis of what the URL leads to now (counted)."""
        if not self._attempt.committed:
            raise PortBindingError(
                "Commit to a failing layer and a cause first: hints reveal the diagnosis, and your own "
                "call is worth more before you see it.",
                hint=f"e.g. `portbinding challenge commit {self.id} --layer published --cause not_published` "
                f"(layers: {', '.join(LAYERS)}; causes: {', '.join(CHALLENGE_CAUSES)})",
            )
        number = min(self._attempt.hints_used + 1, MAX_HINTS)
        finding = self.finding()
        given = hints.hint(
            self.engine,
            finding,
            number,
            url=self.url,
            host_port=self._attempt.host_port,
            expected=self.expected,
        )
        if finding.cause != "ok":
            self._mutate(lambda a: a.hint_given(number, given.layer, at=time.time(), via=via))
        return given

    def finding(self) -> hints.Finding:
        """The live diagnosis of what stands between the URL and the expected service."""
        a = self._attempt
        return hints.find(
            self.engine,
            container=a.container,
            host_port=a.host_port,
            url=a.url,
            expected=self.expected,
            since=a.started_at,
        )

    def note_fix(self, *, via: str) -> None:
        """The learner ran a fixing command (the widget's command box knows; a terminal does not)."""
        self._mutate(lambda a: a.fixed(at=time.time(), via=via))

    # ------------------------------------------------------------------------------ ending

    def end(self, *, remove_mine: bool = False, via: str = "cli") -> Ending:
        """Remove what the challenge started; the learner's own containers only when asked."""
        self.check(via=via)  # a fix made just before ending still counts
        try:
            yours = self._yours()
            if remove_mine:
                for container in yours:
                    self.engine.remove(container)
        finally:  # whatever happened above, what the challenge started goes
            done = teardown(self.engine, self.id, self._attempt.image)
        removed = done.removed + ([str(c.name) for c in yours] if remove_mine else [])
        kept = done.image_kept
        if not self.ended:
            self._mutate(lambda a: a.ended(at=time.time(), via=via), record=True)
        left = [] if remove_mine else [str(c.name) for c in yours]
        program = cli_program(self.engine.info.kind)
        advice = ""
        if left:
            advice = (
                f"Your own container(s) {', '.join(left)} still run (the challenge does not remove what "
                f"you started): `{program} rm -f {' '.join(left)}` removes them, or "
                f"`portbinding challenge end {self.id} --remove-mine`."
            )
        elif kept:
            advice = (
                f"The image {self._attempt.image} is still used by a container; remove that, then the image."
            )
        return Ending(removed, left, advice, self._attempt.record())

    def _yours(self) -> list[Any]:
        """The learner's own containers on the challenge's port or image (not labelled by it)."""
        found = {}
        try:
            for item in self.engine.client.containers.list(all=True, ignore_removed=True):
                labels = item.labels or {}
                image = str((item.attrs.get("Config") or {}).get("Image") or "")
                on_port = mapping_for(item, self._attempt.host_port) is not None
                if CHALLENGE_LABEL not in labels and (on_port or image == self._attempt.image):
                    found[item.id] = item
        except ENGINE_ERRORS as exc:
            raise engine_stopped(exc) from exc
        return list(found.values())

    # ------------------------------------------------------------------------------ plumbing

    def _subject(self) -> Any:
        a = self._attempt
        try:
            return hints.locate(
                self.engine, container=a.container, host_port=a.host_port, since=a.started_at
            ).subject
        except ContainerNotFound:
            return None

    def _mutate(self, change: Callable[[Attempt], object], *, record: bool = False) -> None:
        """Re-read the state file, apply ``change``, write it back -- under a lock, across processes."""
        with self._lock, self._file_lock():
            with contextlib.suppress(PortBindingError):
                self._attempt = store.load(self.id, self._folder)
            change(self._attempt)
            store.save(self._attempt, self._folder)
            if record:
                store.append_record(self._attempt.record(), self._folder)

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        path = store.state_path(self.id, self._folder).with_suffix(".lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def labelled(self) -> list[str]:
        """Names of the containers this challenge started and still has."""
        return [str(c.name) for c in labelled(self.engine, self.id)]


def _told(attempt: Attempt, expected: Service, observed: ProbeResult) -> dict[str, Any]:
    now = curl_says(observed).replace("\n", " ")
    ladder = " -> ".join(rung.title.lower() for rung in RUNGS)
    task = (
        f"Make {expected.title} answer at {attempt.url} (GET {expected.path} should return {expected.says}). "
        f"The container meant to serve it is {attempt.container}. Right now a GET there says: {now}\n"
        f"Climb the ladder ({ladder}) with real commands, commit to a failing layer and a cause, then fix it "
        "any way you like: the challenge turns solved as soon as the right server answers there."
    )
    return {
        "id": attempt.id,
        "container": attempt.container,
        "url": attempt.url,
        "host_port": attempt.host_port,
        "service": expected.title,
        "expects": f"GET {expected.path} -> {expected.says}",
        "observed": now,
        "task": task,
        "layers": list(LAYERS),
        "causes": {cause: CAUSE_WORDS[cause] for cause in CHALLENGE_CAUSES},
    }


def layer_of(name: str) -> Layer:
    """``name`` as a Layer (a clear error for anything else)."""
    for layer in LAYERS:
        if layer == name:
            return layer
    raise PortBindingError(f"There is no rung called {name!r}.", hint=f"choose one of: {', '.join(LAYERS)}")
