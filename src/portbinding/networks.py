"""User-defined networks for lesson 07: where a container is placed, and the sweep of the course's.

Containers on one user-defined network reach each other by name (Docker's embedded DNS at
127.0.0.11, aardvark-dns on Podman); on the default bridge they do not. The course makes such
networks labelled like its containers (``portbinding.course``, the session, the run), so the
sweep that removes a session's containers removes its networks too. The engine's own wiring
(:class:`portbinding.engine.Engine`) calls these; lessons call :func:`create_network`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container, _create_container_args
from docker.models.networks import Network
from docker.utils import convert_port_bindings

from portbinding.command import RunSpec
from portbinding.engine_errors import ENGINE_ERRORS, engine_stopped, explanation
from portbinding.errors import ContainerFailed

LOGGER = logging.getLogger(__name__)


def placement(client: docker.DockerClient, spec: RunSpec) -> dict[str, Any]:
    """The create options that put ``spec``'s container on its network, with its aliases."""
    options: dict[str, Any] = (
        {"extra_hosts": {"host.docker.internal": "host-gateway"}} if spec.host_gateway else {}
    )
    if spec.network is None:
        return options
    options["network"] = spec.network
    if spec.aliases:
        endpoint = client.api.create_endpoint_config(aliases=list(spec.aliases))
        options["networking_config"] = {spec.network: endpoint}
    return options


def create_container(client: docker.DockerClient, image: str, **options: Any) -> Container:
    """``client.containers.create``, except that ``--network host`` keeps its ``-p`` options.

    docker-py refuses port bindings with the host network ("incompatible"); the docker CLI sends
    them, and the engine keeps them in HostConfig.PortBindings while ignoring them (it warns:
    "Published ports are discarded when using host network mode"). Lesson 07 shows exactly that,
    and the diagnosis reads them to say so (``host_network``), so they are sent as the CLI sends them.
    """
    ports = options.get("ports")
    if options.get("network") != "host" or not ports:
        return client.containers.create(image, **options)
    # docker-py's own argument builder (pinned: docker>=7.2,<7.3), then the bindings it refuses.
    kept = {k: v for k, v in options.items() if k != "ports"}
    arguments = _create_container_args({"image": image, "version": client.api.api_version, **kept})
    arguments["host_config"]["PortBindings"] = convert_port_bindings(ports)
    arguments["ports"] = list(ports)
    created = client.api.create_container(**arguments)
    return client.containers.get(created["Id"])


def create_network(client: docker.DockerClient, name: str, *, labels: Mapping[str, str]) -> Network:
    """A user-defined bridge network called ``name``, labelled ``labels`` (the engine's own).

    One that exists already with the same session label is reused (a cell run twice); one that
    belongs to someone else is a clear error, never taken over.
    """
    try:
        existing = client.networks.list(names=[name])
        for network in existing:
            if network.name == name:
                theirs = network.attrs.get("Labels") or {}
                if all(theirs.get(key) == value for key, value in labels.items()):
                    return network
                raise ContainerFailed(
                    f"A network called {name!r} already exists, and this lesson did not make it.",
                    hint=f"choose another name, or remove it if it is yours (`docker network rm {name}`)",
                )
        return client.networks.create(name, driver="bridge", labels=dict(labels))
    except docker.errors.APIError as exc:
        raise ContainerFailed(
            f"The engine would not create the network {name!r}: {explanation(exc)}"
        ) from exc
    except ENGINE_ERRORS as exc:
        raise engine_stopped(exc) from exc


def remove_networks(client: docker.DockerClient, label: list[str]) -> list[str]:
    """Remove the networks labelled ``label`` (after their containers); names of those removed.

    One still used by a container that is not the course's stays, with a warning: removing it
    would fail anyway, and that container is not ours to stop.
    """
    removed = []
    try:
        networks = client.networks.list(filters={"label": label})
    except docker.errors.APIError:
        return []  # an engine without networks (the course's process engine answers 404)
    except ENGINE_ERRORS as exc:
        raise engine_stopped(exc) from exc
    for network in networks:
        try:
            with contextlib.suppress(docker.errors.NotFound):
                network.remove()
                removed.append(str(network.name))
        except docker.errors.APIError as exc:
            LOGGER.warning("the course network %s was kept: %s", network.name, explanation(exc))
        except ENGINE_ERRORS as exc:
            raise engine_stopped(exc) from exc
    return removed
