"""Fixtures for tests that need a real engine: an Engine session, the built images, free ports."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from portbinding.engine import Engine, free_port
from portbinding.images import BuiltImage, build_images
from portbinding.provision import find_engine


@pytest.fixture(scope="session")
def course_images(docker_client: docker.DockerClient) -> list[BuiltImage]:
    """Every exercise image, built (or confirmed up to date) once per test session."""
    return build_images(docker_client)


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
def host_port() -> int:
    """A host port that is free right now, so no test depends on 8888 being free."""
    return free_port()
