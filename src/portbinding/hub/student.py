"""What a student's own server knows about the hub: their engine, their limits, the host's refusal.

The spawner sets ``PORTBINDING_HUB*`` in every server's environment; ``portbinding doctor``
and the lessons' first cell read them here, and engine discovery turns "permission denied on
the host's socket" into the hub's rule instead of the laptop advice (join ``docker``).
"""

from __future__ import annotations

import os
from typing import Any

from portbinding.errors import EngineUnavailable

HUB_ENV = "PORTBINDING_HUB"
HUB_ENGINE_ENV = "PORTBINDING_HUB_ENGINE"
HUB_LIMITS_ENV = "PORTBINDING_HUB_LIMITS"


def on_hub() -> bool:
    """Whether this process runs in a student's (or instructor's) server on a course hub."""
    return bool(os.environ.get(HUB_ENV))


def context() -> dict[str, Any] | None:
    """The hub, the student's engine and limits (with current usage), or None off the hub."""
    if not on_hub():
        return None
    from portbinding.hub.limits import current

    return {
        "hub": os.environ.get(HUB_ENV, ""),
        "engine": os.environ.get(HUB_ENGINE_ENV, ""),
        "limits": os.environ.get(HUB_LIMITS_ENV, ""),
        "usage": current(),
    }


def describe() -> list[str]:
    """Lines for ``portbinding doctor`` on the hub (none elsewhere)."""
    found = context()
    if found is None:
        return []
    usage = found["usage"]
    used = (
        f"now {(usage['memory_used'] or 0) / 2**20:.0f} MiB, {usage['pids_used'] or 0} processes"
        if usage["memory_used"] is not None
        else "usage not readable"
    )
    return [
        f"Hub {found['hub']!r}: your containers run on {found['engine']}.",
        f"  Limits for everything you run: {found['limits']} ({used}).",
        "  Other students' engines and the hub's own Docker are not yours: they refuse you.",
    ]


def host_engine_refused(path: str, tried: str) -> EngineUnavailable:
    """The hub's answer when a student points at the host's engine (permission denied on it)."""
    mine = os.environ.get(HUB_ENGINE_ENV, "your own engine")
    return EngineUnavailable(
        f"On this hub, {path} is the hub's own engine: using it would make you root on the hub, so "
        f"students may not (permission denied, as intended).\nTried:\n{tried}",
        hint=f"use {mine}: unset DOCKER_HOST (the hub set it for you) or run `portbinding doctor` to see it",
    )
