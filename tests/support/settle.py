"""Bringing a freshly started scenario container into the state its cause describes."""

from __future__ import annotations

from docker.models.containers import Container

from portbinding.diagnose import look_inside
from portbinding.engine import Engine
from portbinding.probe import wait_until
from portbinding.scenarios import Scenario


def settle(engine: Engine, container: Container, item: Scenario) -> None:
    """Bring a freshly started scenario container into the state its cause describes."""
    if item.cause == "crashed":
        exited = wait_until(lambda: engine.state(container).get("Status") == "exited", timeout=20)
        assert exited, "crash-before-listen should have exited by now"
        return
    if item.cause == "still_starting":
        return  # diagnose at once: the app sleeps before it listens
    # port_retried/wrong_service hold a port with a placeholder first: wait for both servers.
    servers = 2 if "HOLD_PORT" in dict(item.run.env) else 1

    def expected_service_answers() -> bool:
        _, answers, _ = look_inside(engine, container)
        found = any(a.is_jupyter if item.expect == "jupyter" else a.is_http for a in answers)
        return found and len({a.port for a in answers}) >= servers

    settled = wait_until(expected_service_answers, timeout=30, alive=lambda: engine.is_running(container))
    assert settled, f"{item.id}: the service never came up inside"
