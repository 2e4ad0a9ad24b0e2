"""Compose: which front end this machine has, and which container is a Compose service.

Two spellings live in the wild, and a learner has one, both or neither:

- ``docker compose`` -- Compose v2 and later (Go), a plugin of the docker CLI, found in
  ``$DOCKER_CONFIG/cli-plugins`` (default ``~/.docker/cli-plugins``) or the system's plugin folders;
- ``docker-compose`` -- either Compose v1 (Python, 1.29 is Debian 12's ``docker-compose``
  package; names containers ``project_service_1``) or a v2 binary installed on its own (names
  them ``project-service-1``).

Both label every container they make with ``com.docker.compose.project`` and
``com.docker.compose.service`` (and ``.container-number``), so :func:`find_service` finds a
service's container the same way whichever front end started it -- and so does the engine's API,
with no Compose installed at all. :func:`front_ends` lists what this machine has, preferred first,
for ``portbinding doctor`` and for lessons that run Compose.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeAlias

from docker.models.containers import Container

from portbinding.engine import Engine
from portbinding.engine_errors import ENGINE_ERRORS, engine_stopped
from portbinding.errors import ContainerNotFound, UnknownName

LOGGER = logging.getLogger(__name__)

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
NUMBER_LABEL = "com.docker.compose.container-number"
VERSION_TIMEOUT_S = 10.0
_VERSION = re.compile(r"v?(\d+\.\d+\.\d+)")

Kind: TypeAlias = Literal["plugin", "v1", "standalone"]


@dataclass(frozen=True)
class FrontEnd:
    """One way to run Compose here: the words that start it, its version, what kind it is."""

    argv: tuple[str, ...]
    version: str
    kind: Kind
    path: str

    @property
    def command(self) -> str:
        """How a learner types it: ``docker compose`` or ``docker-compose``."""
        return "docker compose" if self.kind == "plugin" else "docker-compose"

    def describe(self) -> str:
        what = {
            "plugin": "Compose v2+, the docker CLI plugin",
            "v1": "Compose v1 (Python; end of life since 2023)",
            "standalone": "Compose v2+ installed on its own",
        }[self.kind]
        return f"{self.command} {self.version} -- {what} ({self.path})"

    def to_dict(self) -> dict[str, object]:
        return {
            "command": self.command,
            "argv": list(self.argv),
            "version": self.version,
            "kind": self.kind,
            "path": self.path,
        }


def front_ends(*, env: Mapping[str, str] | None = None) -> list[FrontEnd]:
    """Every Compose front end this machine has: ``docker compose`` first, then each distinct
    ``docker-compose`` on PATH in PATH order (a v2 binary early on PATH can hide Debian's v1)."""
    environ = dict(os.environ if env is None else env)
    found: list[FrontEnd] = []
    docker = shutil.which("docker", path=environ.get("PATH"))
    if docker is not None:
        version = _version([docker, "compose", "version", "--short"], environ)
        if version is not None:
            found.append(FrontEnd((docker, "compose"), version, "plugin", _plugin_path(environ)))
    seen: set[str] = set()
    for folder in environ.get("PATH", "").split(os.pathsep):
        candidate = Path(folder or ".") / "docker-compose"
        if not (candidate.is_file() and os.access(candidate, os.X_OK)):
            continue
        real = str(candidate.resolve())
        if real in seen:
            continue
        seen.add(real)
        version = _version([str(candidate), "version", "--short"], environ)
        if version is not None:
            kind: Kind = "v1" if version.startswith("1.") else "standalone"
            found.append(FrontEnd((str(candidate),), version, kind, str(candidate)))
    return found


def front_end(*, env: Mapping[str, str] | None = None) -> FrontEnd | None:
    """The front end a lesson runs: ``docker compose`` where present, else ``docker-compose``."""
    found = front_ends(env=env)
    return found[0] if found else None


def _version(argv: list[str], env: Mapping[str, str]) -> str | None:
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=VERSION_TIMEOUT_S, env=dict(env), check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        LOGGER.debug("%s: %s", argv, exc)
        return None
    match = _VERSION.search(result.stdout)
    if result.returncode != 0 or match is None:
        return None
    return match.group(1)


def _plugin_path(env: Mapping[str, str]) -> str:
    """Where the docker CLI found its compose plugin (the first plugin folder that has one)."""
    config = env.get("DOCKER_CONFIG") or str(Path(env.get("HOME", "~")).expanduser() / ".docker")
    folders = [
        Path(config) / "cli-plugins",
        Path("/usr/local/lib/docker/cli-plugins"),
        Path("/usr/local/libexec/docker/cli-plugins"),
        Path("/usr/lib/docker/cli-plugins"),
        Path("/usr/libexec/docker/cli-plugins"),
    ]
    return next(
        (str(f / "docker-compose") for f in folders if (f / "docker-compose").exists()), "docker compose"
    )


# ------------------------------------------------------------------------------ the service's container


@dataclass(frozen=True)
class ServiceContainer:
    """A container Compose made: its project, its service, its replica number."""

    project: str
    service: str
    number: int
    container: Container

    @property
    def running(self) -> bool:
        return str(self.container.status) == "running"


def service_containers(
    engine: Engine, *, service: str | None = None, project: str | None = None
) -> list[ServiceContainer]:
    """Every container Compose made on this engine (of ``service`` / ``project``, when given),
    running ones first, then by project and replica number."""
    labels = [SERVICE_LABEL if service is None else f"{SERVICE_LABEL}={service}"]
    if project is not None:
        labels.append(f"{PROJECT_LABEL}={project}")
    try:
        containers = engine.client.containers.list(all=True, filters={"label": labels})
    except ENGINE_ERRORS as exc:
        raise engine_stopped(exc) from exc
    found = []
    for container in containers:
        tags = container.labels
        number = str(tags.get(NUMBER_LABEL, "1"))
        found.append(
            ServiceContainer(
                str(tags.get(PROJECT_LABEL, "")),
                str(tags.get(SERVICE_LABEL, "")),
                int(number) if number.isdigit() else 1,
                container,
            )
        )
    return sorted(found, key=lambda item: (not item.running, item.project, item.service, item.number))


def find_service(engine: Engine, service: str, *, project: str | None = None) -> Container:
    """The container of Compose service ``service`` (in ``project``, if given): the first running
    replica. Two projects with that service and no ``project`` is an error that names them."""
    if not service or "=" in service or "," in service:
        raise UnknownName(
            f"{service!r} is not a Compose service name.",
            hint="give the name under services: in the Compose file, e.g. --compose api",
        )
    found = service_containers(engine, service=service, project=project)
    if not found:
        where = f" in project {project!r}" if project else ""
        projects = sorted({item.project for item in service_containers(engine, project=project)})
        known = sorted({item.service for item in service_containers(engine, project=project)})
        raise ContainerNotFound(
            f"No container of the Compose service {service!r}{where} exists on this engine.",
            hint=(
                f"services here: {', '.join(known)} (projects: {', '.join(projects)})"
                if known
                else "start it first (`docker compose up -d` in the Compose file's folder)"
            ),
        )
    projects = sorted({item.project for item in found})
    if project is None and len(projects) > 1:
        raise UnknownName(
            f"The Compose service {service!r} exists in {len(projects)} projects: {', '.join(projects)}.",
            hint=f"say which with --project, e.g. --project {projects[0]}",
        )
    return found[0].container
