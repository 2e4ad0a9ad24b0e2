"""Watching a container over time, for the lessons: health, exits, and a race to "ready".

Pollers with deadlines (``wait_until`` underneath), so a lesson cell never sleeps blindly and
never hangs: each returns what it saw when the deadline passed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from docker.models.containers import Container

from portbinding.engine import Engine
from portbinding.errors import ContainerNotFound
from portbinding.probe import probe_http, wait_until


def health(engine: Engine, container: Container) -> str | None:
    """Docker's HEALTHCHECK verdict: ``starting``, ``healthy``, ``unhealthy`` (None: no HEALTHCHECK)."""
    status = (engine.state(container).get("Health") or {}).get("Status")
    return str(status) if status else None


def wait_health(engine: Engine, container: Container, *, timeout: float) -> str | None:
    """Wait until the health status settles (healthy or unhealthy); the last status seen."""
    wait_until(
        lambda: health(engine, container) in ("healthy", "unhealthy"), timeout=timeout, max_interval=0.5
    )
    return health(engine, container)


def wait_exited(engine: Engine, container: Container, *, timeout: float) -> bool:
    """Wait until the container has stopped running; True if it did within ``timeout``."""
    return wait_until(lambda: not engine.is_running(container), timeout=timeout, max_interval=0.25)


@dataclass(frozen=True)
class Race:
    """When a request first got an answer, and when Docker first said healthy (seconds from the start)."""

    answered_after: float | None
    healthy_after: float | None

    @property
    def first(self) -> str:
        """``probe`` or ``healthy``: which was ready first (``neither`` within the deadline)."""
        a, h = self.answered_after, self.healthy_after
        if a is None and h is None:
            return "neither"
        if h is None or (a is not None and a <= h):
            return "probe"
        return "healthy"

    def __str__(self) -> str:
        def at(value: float | None) -> str:
            return "never (within the deadline)" if value is None else f"after {value:.1f} s"

        answered, healthy = at(self.answered_after), at(self.healthy_after)
        return f"your request first answered {answered}; Docker said healthy {healthy}"


def race_to_ready(engine: Engine, container: Container, url: str, *, started: float, timeout: float) -> Race:
    """Watch ``url`` and the container's health together until both are ready (or ``timeout``).

    ``started`` is the ``time.monotonic()`` the container was started at.
    """
    marks: dict[str, float] = {}

    def both() -> bool:
        now = time.monotonic() - started
        if "answered" not in marks and probe_http(url, timeout=1.0).ok:
            marks["answered"] = now
        try:
            if "healthy" not in marks and health(engine, container) == "healthy":
                marks["healthy"] = now
        except ContainerNotFound:
            return True
        return len(marks) == 2

    # Asked every 50 ms at most: the moment each one turns ready is seen within a poll.
    wait_until(both, timeout=timeout, first_interval=0.02, max_interval=0.05)
    return Race(marks.get("answered"), marks.get("healthy"))


def wait_listeners(
    engine: Engine, container: Container, *, timeout: float, port: int | None = None, count: int = 1
) -> list[int]:
    """Wait until ``count`` sockets listen inside (one on ``port``, if given), or the container stops.

    Returns the listening ports seen last. A container with a placeholder in front of its real
    server opens two sockets, one after the other: waiting for the first is not enough.
    """
    seen: list[int] = []

    def enough() -> bool:
        seen[:] = sorted({item.port for item in engine.listeners(container)})
        return len(seen) >= count and (port is None or port in seen)

    wait_until(enough, timeout=timeout, alive=lambda: engine.is_running(container), max_interval=0.25)
    return seen
