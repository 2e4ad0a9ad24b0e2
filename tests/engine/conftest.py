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
    """One Engine session for the whole test run; at its end no container of it may remain."""
    client, info = find_engine()
    engine = Engine(client, info, owner="tests")
    yield engine
    leftovers = [c.name for c in engine.course_containers(session=engine.session)]
    engine.cleanup(session=engine.session)
    assert not leftovers, f"tests left these containers behind: {leftovers}"


@pytest.fixture
def engine(session_engine: Engine, course_images: list[BuiltImage]) -> Iterator[Engine]:
    """The session engine, with the images built; containers a test starts are removed after it."""
    before = {c.id for c in session_engine.course_containers(session=session_engine.session)}
    yield session_engine
    for container in session_engine.course_containers(session=session_engine.session):
        if container.id not in before:
            session_engine.remove(container)


@pytest.fixture
def host_port() -> int:
    """A host port that is free right now, so no test depends on 8888 being free."""
    return free_port()
