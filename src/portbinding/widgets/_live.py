"""Live facts about a container, gathered the same way for every widget.

What listens inside comes from the kernel's own tables (/proc/net/tcp, tcp6) read with one
``cat`` exec -- no ss/netstat needed in slim images. The ``docker ps`` / ``docker port`` /
``docker inspect`` views are rebuilt from the engine's inspect data, so they show exactly what
the CLI would.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from docker.models.containers import Container

from portbinding.dockerjson import ContainerInspect, ContainerState, container_inspect
from portbinding.engine import Engine
from portbinding.ports import bracket_host
from portbinding.probe import wait_until
from portbinding.procnet import Listener


@dataclass(frozen=True)
class Settled:
    """Where a freshly started container got to: listening, exited, or still neither."""

    running: bool
    listeners: tuple[Listener, ...]
    waited_s: float
    exit_code: int | None = None

    @property
    def listening(self) -> bool:
        return bool(self.listeners)


def listeners(engine: Engine, container: Container) -> list[Listener]:
    """Every listening TCP socket inside ``container`` ([] when it is not running)."""
    return engine.listeners(container)


def wait_listening(
    engine: Engine, container: Container, *, timeout: float, stop: threading.Event | None = None
) -> Settled:
    """Poll until something listens inside the container, it exits, or ``timeout`` passes.

    A started container is not a started server: Jupyter needs a few seconds before it opens its
    socket. Probing before then shows "still starting", not the situation the learner is
    studying, so runs wait for the socket (or the exit) first.
    """
    stop = stop or threading.Event()
    started = time.monotonic()
    outcome: list[Settled] = []

    def settled() -> bool:
        state = engine.state(container)
        if state.get("Status") != "running":
            outcome.append(Settled(False, (), time.monotonic() - started, int(state.get("ExitCode", 0))))
        elif found := engine.listeners(container):
            outcome.append(Settled(True, tuple(found), time.monotonic() - started))
        return bool(outcome)

    # Polling back-off: nothing signals us when a process inside calls listen().
    if wait_until(
        settled, timeout=timeout, alive=lambda: not stop.is_set(), first_interval=0.05, max_interval=0.4
    ):
        return outcome[-1]
    return Settled(True, (), time.monotonic() - started)


# ------------------------------------------------------------------------------ CLI-like views


def ports_column(attrs: ContainerInspect) -> str:
    """The PORTS column of ``docker ps``: ``0.0.0.0:8888->8888/tcp, [::]:8888->8888/tcp`` or ``8888/tcp``."""
    ports = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
    parts: list[str] = []
    for key in sorted(ports, key=_port_key):
        bindings = ports[key]
        if not bindings:
            parts.append(key)
            continue
        for binding in bindings:
            host = bracket_host(str(binding.get("HostIp", "")))  # docker ps 20.10: [::]:8888->8888/tcp
            parts.append(f"{host}:{binding.get('HostPort', '')}->{key}")
    return ", ".join(parts)


def status_text(state: ContainerState, *, now: datetime | None = None) -> str:
    """The STATUS column of ``docker ps``: ``Up 5 seconds``, ``Exited (1) 3 seconds ago``, ``Created``."""
    now = now or datetime.now(UTC)
    status = str(state.get("Status", "unknown"))
    if status == "running":
        health = str((state.get("Health") or {}).get("Status") or "")
        suffix = {"": "", "starting": " (health: starting)"}.get(health, f" ({health})")
        return f"Up {_human(_since(state.get('StartedAt'), now))}{suffix}"
    if status == "exited":
        return f"Exited ({state.get('ExitCode', '?')}) {_human(_since(state.get('FinishedAt'), now))} ago"
    return status.capitalize()


def ps_rows(containers: list[Container]) -> list[list[str]]:
    """``docker ps -a`` rows (id, image, status, ports, name) for the given containers."""
    rows = []
    for container in containers:
        attrs = container_inspect(container.attrs)
        rows.append(
            [
                str(container.id)[:12],
                str((attrs.get("Config") or {}).get("Image", "")),
                status_text(attrs.get("State") or {}),
                ports_column(attrs),
                str(container.name),
            ]
        )
    return rows


def inspect_view(attrs: ContainerInspect) -> str:
    """The parts of ``docker inspect`` that decide reachability, as pretty JSON."""
    state = attrs.get("State") or {}
    network = attrs.get("NetworkSettings") or {}
    view = {
        "Name": str(attrs.get("Name", "")).lstrip("/"),
        "State": {
            key: state.get(key)
            for key in ("Status", "Running", "ExitCode", "StartedAt", "FinishedAt", "Error")
            if key in state
        }
        | ({"Health": {"Status": health.get("Status")}} if (health := state.get("Health")) else {}),
        "Config": {"ExposedPorts": (attrs.get("Config") or {}).get("ExposedPorts")},
        "HostConfig": {"PortBindings": (attrs.get("HostConfig") or {}).get("PortBindings")},
        "NetworkSettings": {"IPAddress": network.get("IPAddress"), "Ports": network.get("Ports")},
    }
    return json.dumps(view, indent=2)


def container_ip(attrs: Mapping[str, Any]) -> str:
    """The container's address on its network (where the engine forwards published ports)."""
    network = attrs.get("NetworkSettings") or {}
    address = str(network.get("IPAddress") or "")
    if not address:
        for details in (network.get("Networks") or {}).values():
            address = str((details or {}).get("IPAddress") or "")
            if address:
                break
    return address


def lan_address() -> str | None:
    """This machine's own non-loopback IPv4 address (how another machine would reach it), if any.

    Connecting a UDP socket sends nothing; it only asks the kernel which source address the
    route to that destination would use.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # TEST-NET-1: never actually contacted
            address = str(sock.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def _port_key(key: str) -> tuple[int, str]:
    number, _, protocol = key.partition("/")
    return (int(number) if number.isdigit() else 0, protocol)


def _since(stamp: object, now: datetime) -> float:
    text = str(stamp or "")
    if not text or text.startswith("0001"):
        return 0.0
    try:
        moment = datetime.fromisoformat(text[:26].rstrip("Z") + "+00:00")
    except ValueError:
        return 0.0
    return max(0.0, (now - moment).total_seconds())


def _human(seconds: float) -> str:
    if seconds < 1:
        return "Less than a second"
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    count = int(seconds)
    return f"{count} second{'s' if count != 1 else ''}"
