"""The services a challenge asks a learner to make reachable, and how to recognise each one.

"Something answers" is not "the right server answers": docker-proxy accepts a TCP connection
with nothing behind it, a placeholder can hold the port, another course service can be
published on it. Each service is recognised by what only it says to one GET: Jupyter's
``/api`` is ``{"version": ...}``; the scoring API's ``/health`` is ``{"status": "ok",
"version": ...}``; the churn-model API's is ``{"status": "ok", "model": ...}``; the model
server's is ``{"status": "ready"}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from portbinding.command import RunSpec, parse_run
from portbinding.diagnose import Expect
from portbinding.errors import UnknownName
from portbinding.probe import ProbeResult, is_jupyter


def _json(result: ProbeResult) -> dict[str, Any] | None:
    if result.http_status != 200:
        return None
    try:
        document = json.loads(result.body_excerpt)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _scoring(result: ProbeResult) -> bool:
    doc = _json(result)
    return doc is not None and doc.get("status") == "ok" and "version" in doc


def _churn_model(result: ProbeResult) -> bool:
    doc = _json(result)
    return doc is not None and doc.get("status") == "ok" and "model" in doc


def _model_server(result: ProbeResult) -> bool:
    doc = _json(result)
    return doc is not None and doc.get("status") == "ready"


@dataclass(frozen=True)
class Service:
    """A service a challenge's URL must lead to."""

    name: str  # the image family: "notebook", "scoring-api", ...
    title: str  # for the learner: "a Jupyter server"
    path: str  # what to GET
    says: str  # what its answer looks like, for the learner
    expect: Expect  # what the diagnosis should expect inside
    container_port: int  # where the course image listens by default
    known_good: RunSpec  # a line that runs it right (the fallback fix when nothing of it is left)
    recognise: Callable[[ProbeResult], bool]

    def answers(self, result: ProbeResult) -> bool:
        """True when ``result`` is this service's own answer."""
        return self.recognise(result)

    def answers_reply(self, status: int | None, body: str) -> bool:
        """True when an HTTP reply seen some other way (curl, say) is this service's own answer."""
        return self.recognise(ProbeResult("ok", "", 0.0, http_status=status, body_excerpt=body))


SERVICES: tuple[Service, ...] = (
    Service(
        "notebook",
        "a Jupyter server",
        "/api",
        'JSON with a "version" (Jupyter answers GET /api without a token)',
        "jupyter",
        8888,
        parse_run("docker run -d portbinding/notebook:1.0"),
        is_jupyter,
    ),
    Service(
        "scoring-api",
        "the scoring API",
        "/health",
        '{"status": "ok", "version": ...}',
        "http",
        8000,
        parse_run("docker run -d portbinding/scoring-api:1.0"),
        _scoring,
    ),
    Service(
        "churn-model",
        "the churn-model API",
        "/health",
        '{"status": "ok", "model": ...}',
        "http",
        8000,
        parse_run("docker run -d -e MODEL_PATH=/app/model.json portbinding/crash-before-listen:1.0"),
        _churn_model,
    ),
    Service(
        "model-server",
        "the model server",
        "/health",
        '{"status": "ready"}',
        "http",
        8000,
        parse_run("docker run -d portbinding/slow-start:1.0"),
        _model_server,
    ),
)
SERVICE_NAMES: tuple[str, ...] = tuple(s.name for s in SERVICES)


def service(name: str) -> Service:
    """The service called ``name``; a clear error names the known ones."""
    for item in SERVICES:
        if item.name == name:
            return item
    raise UnknownName(
        f"There is no challenge service called {name!r}.", hint=f"choose one of: {', '.join(SERVICE_NAMES)}"
    )
