"""Fixtures for tests that need a real engine: an Engine session, the built images, free ports."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from portbinding.builder import BuiltImage, build_images, missing_images, runnable_images
from portbinding.discovery import find_engine
from portbinding.engine import Engine


@pytest.fixture(scope="session")
def course_images(docker_client: docker.DockerClient) -> list[BuiltImage]:
    """Every exercise image, built (or confirmed up to date) once per test session.

    Images are built on Docker; the other engine kinds get them from their own set-up (Podman
    loads Docker's build, the process engine runs the image folders), so there they must
    already be present -- a missing one fails the suite rather than being built a second way.
    """
    if engine_kind() == "docker":
        return build_images(docker_client)
    missing = missing_images(docker_client)
    assert not missing, f"the {engine_kind()} engine lacks course images: {missing}"
    # Confirmed present, as a build that found them up to date would report them.
    # Only those it can run: the process engine leaves out nginx and Redis (lesson 07).
    runnable = runnable_images(docker_client)
    return [
        BuiltImage(image, docker_client.images.get(image.reference).id, cached=True) for image in runnable
    ]


@pytest.fixture(scope="session")
def session_engine(docker_client: docker.DockerClient) -> Iterator[Engine]:
    """An Engine for session-wide work (its client and info); tests run containers via `engine`."""
    client, info = find_engine()
    yield Engine(client, info, owner="tests")
    client.close()


@pytest.fixture
def engine(session_engine: Engine, course_images: list[BuiltImage]) -> Iterator[Engine]:
    """A fresh Engine session per test, closed the way the course closes one (``with``).

    After the test, the product's own cleanup must have removed everything the test started:
    this is where a leak in ``Engine.__exit__`` would show.
    """
    with Engine(session_engine.client, session_engine.info, owner="tests") as engine:
        yield engine
    left = engine.course_containers(session=engine.session)
    assert not left, f"Engine.__exit__ left these containers behind: {[c.name for c in left]}"


@pytest.fixture
def host_port() -> Iterator[int]:
    """A free host port, held for this test until the container takes it (docker-stacks' way).

    The socket is bound with SO_REUSEADDR and never listens: the kernel hands the port to no
    other test or program meanwhile, and the engine's proxy (which also sets SO_REUSEADDR) can
    still bind it. So no test depends on 8888 being free, and none races another for a port.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("0.0.0.0", 0))
        yield int(holder.getsockname()[1])


# ------------------------------------------------------------------ which engine the suite runs on
#
# `make test` runs this suite once per engine kind (Docker, rootless Podman, the process engine):
# PORTBINDING_TEST_ENGINE names the kind and DOCKER_HOST points at it. A test marked
# ``@pytest.mark.engines("docker", reason=...)`` checks something only that kind has (a scratch
# dockerd, image builds); on the others it is deselected -- not skipped -- and the per-engine
# table (tests/engine_matrix.py) lists it with its reason.

ENGINE_KIND_ENV = "PORTBINDING_TEST_ENGINE"


def engine_kind() -> str:
    return os.environ.get(ENGINE_KIND_ENV, "docker")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kind = engine_kind()
    keep: list[pytest.Item] = []
    dropped: dict[pytest.Item, str] = {}  # item -> why it does not apply to this engine
    for item in items:
        marker = item.get_closest_marker("engines")
        if marker is None or kind in marker.args:
            keep.append(item)
        else:
            dropped[item] = str(marker.kwargs.get("reason", ""))
    if dropped:
        config.hook.pytest_deselected(items=list(dropped))
        items[:] = keep
    record = os.environ.get("PORTBINDING_DESELECTED_FILE")
    if record:  # for the per-engine table: which tests did not apply here, and why
        reasons = {item.nodeid: reason for item, reason in dropped.items()}
        Path(record).write_text(json.dumps(reasons, indent=1))
