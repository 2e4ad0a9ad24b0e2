"""Lesson 06's production runtime contract, checked against a running service with live evidence.

Five clauses every shipped service should keep, whoever runs it -- an explicit version tag,
config from the environment, a declared health check the engine calls healthy, an answer along
the users' path (the published port), and the previous version at hand for a rollback. Each
comes back with the evidence it was judged on, so the lesson shows *why* a box is ticked.
"""

from __future__ import annotations

from dataclasses import dataclass

from docker.models.containers import Container

from portbinding.builder import has_image
from portbinding.dockerjson import ContainerConfig, container_inspect
from portbinding.engine import Engine
from portbinding.lesson.watch import wait_health
from portbinding.probe import wait_until_ready


@dataclass(frozen=True)
class Clause:
    """One clause of the contract: kept or not, and the evidence."""

    name: str
    kept: bool
    evidence: str

    def __str__(self) -> str:
        return f"[{'x' if self.kept else ' '}] {self.name:<24} {self.evidence}"


def check_contract(
    engine: Engine,
    service: Container,
    *,
    container_port: int,
    previous: str,
    path: str = "/health",
    timeout: float = 30.0,
) -> list[Clause]:
    """Judge ``service`` against the contract, once it answers and its health has settled
    (each waited for at most ``timeout`` seconds); ``previous`` is the image a rollback runs."""
    reachable = wait_until_ready(engine, service, container_port, path=path, timeout=timeout)
    health = wait_health(engine, service, timeout=timeout)
    # The container's own config: the image's HEALTHCHECK as this run uses it (Podman's image
    # inspect does not show it at all).
    config = container_inspect(service.attrs).get("Config") or ContainerConfig()
    reference = config.get("Image", "")
    env = dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item)
    declared = bool(config.get("Healthcheck"))
    said = f"HEALTHCHECK declared: {declared}, the engine says {health}"
    if declared and health == "starting" and engine.info.kind == "podman":
        said += " (rootless Podman runs health checks from systemd timers; without systemd none runs)"
    rollback = has_image(engine.client, previous)
    return [
        Clause("version tag", ":" in reference and not reference.endswith(":latest"), f"runs {reference}"),
        Clause(
            "explicit config",
            {"PORT", "BIND_HOST"} <= env.keys(),
            f"PORT={env.get('PORT')}, BIND_HOST={env.get('BIND_HOST')}",
        ),
        Clause("health check", declared and health == "healthy", said),
        Clause("dependency connectivity", reachable.ok, f"GET {reachable.target} -> {reachable.outcome}"),
        Clause("rollback", rollback, f"{previous} is {'on the engine' if rollback else 'missing'}"),
    ]
