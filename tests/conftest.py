"""Shared fixtures. Tests are grouped by what they need: unit/ engine/ notebooks/ grading/ browser/.

Under ``make test`` (PORTBINDING_REQUIRE_ENGINE=1) a missing engine *fails* every test that
needs one instead of skipping it, so CI can never go green without running them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
GROUPS = ("unit", "engine", "notebooks", "grading", "browser")


def engine_required() -> bool:
    return os.environ.get("PORTBINDING_REQUIRE_ENGINE") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with the group named by its folder, so `-m engine` etc. select them."""
    for item in items:
        parts = Path(str(item.fspath)).relative_to(REPO / "tests").parts
        if parts and parts[0] in GROUPS and parts[0] != "unit":
            item.add_marker(getattr(pytest.mark, parts[0]))


@pytest.fixture(scope="session")
def docker_client() -> Iterator[object]:
    """A Docker SDK client for the engine the course uses; fail (under make test) or skip without one."""
    import docker

    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as exc:  # any failure to reach the engine means "no engine" here
        message = f"no container engine answers: {exc}"
        if engine_required():
            pytest.fail(message + " (make test requires one; run `portbinding doctor`)")
        pytest.skip(message)
    yield client
    client.close()
