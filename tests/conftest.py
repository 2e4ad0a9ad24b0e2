"""Shared fixtures. Tests are grouped by what they need: unit/ engine/ notebooks/ grading/ browser/.

Under ``make test`` (PORTBINDING_REQUIRE_ENGINE=1) a missing engine *fails* every test that
needs one instead of skipping it, so CI can never go green without running them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.support.checkout import REPO
from tests.support.staging import Staged, stage

GROUPS = ("unit", "engine", "notebooks", "grading", "browser", "hub")


def engine_required() -> bool:
    return os.environ.get("PORTBINDING_REQUIRE_ENGINE") == "1"


def _run_filter() -> dict[str, list[str]]:
    return {
        "label": [
            "portbinding.course=port-binding-lab",
            f"portbinding.run={os.environ['PORTBINDING_RUN_ID']}",
        ]
    }


_before: set[str] | None = None
_networks_before: set[str] = set()


def _course_container_ids() -> set[str] | None:
    """Ids of every course container this run started, or None when no engine answers."""
    found = _course_ids()
    return None if found is None else found[0]


def _course_ids() -> tuple[set[str], set[str]] | None:
    """Ids of every course container and network this run made, or None when no engine answers."""
    from portbinding.discovery import find_engine
    from portbinding.errors import EngineUnavailable

    try:
        client, _ = find_engine()
    except EngineUnavailable:
        return None  # no engine: the engine fixtures report that, not this bookkeeping
    try:
        containers = {c.id for c in client.containers.list(all=True, filters=_run_filter())}
        try:
            networks = {n.id for n in client.networks.list(filters=_run_filter())}
        except docker.errors.NotFound:  # the process engine has no networks (and makes none)
            networks = set()
        return containers, networks
    finally:
        client.close()


def pytest_sessionstart(session: pytest.Session) -> None:
    global _before
    # Everything started during this run -- lesson kernels and CLI calls inherit the variable --
    # carries this run's id, so a run beside it on the same engine is never mistaken for ours.
    global _networks_before
    os.environ.setdefault("PORTBINDING_RUN_ID", uuid.uuid4().hex[:12])
    found = _course_ids()
    _before = None if found is None else found[0]
    _networks_before = set() if found is None else found[1]


_skipped_real: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Remember skipped tests of the groups that need real parts (see pytest_sessionfinish)."""
    group = report.nodeid.split("/")[1] if report.nodeid.startswith("tests/") else ""
    if report.skipped and group in GROUPS and group != "unit":
        _skipped_real.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under make test no real-engine test may be skipped, and no container may outlive its test."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if engine_required() and _skipped_real:
        if reporter is not None:
            reporter.write_line(
                f"FAILED: {len(_skipped_real)} real-engine test(s) were skipped under make test: "
                f"{_skipped_real[:5]}",
                red=True,
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    _check_leftovers(session)


def _check_leftovers(session: pytest.Session) -> None:
    """Nothing the course starts may outlive its owner: fail the run if a test left a container
    or a network (lesson 07's, the Compose tests')."""
    found = _course_ids()
    if _before is None or found is None:
        return
    after, networks_after = found
    leftovers = after - _before
    stray_networks = networks_after - _networks_before
    if not leftovers and not stray_networks:
        return
    import docker

    from portbinding.discovery import find_engine

    client, _ = find_engine()
    names = []
    for container_id in leftovers:
        try:
            container = client.containers.get(container_id)
            names.append(f"{container.name} ({container.labels.get('portbinding.owner')})")
            container.remove(force=True)
        except docker.errors.NotFound:
            continue
        except docker.errors.APIError as exc:  # e.g. 409: its owner is removing it right now
            names.append(f"{container_id[:12]} (could not remove: {exc.explanation})")
    for network_id in stray_networks:
        try:
            network = client.networks.get(network_id)
            names.append(
                f"network {network.name} ({network.attrs.get('Labels', {}).get('portbinding.owner')})"
            )
            network.remove()
        except docker.errors.NotFound:
            continue
        except docker.errors.APIError as exc:
            names.append(f"network {network_id[:12]} (could not remove: {exc.explanation})")
    client.close()
    if names:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"FAILED: the test run left course containers or networks behind (now removed): {names}",
                red=True,
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with the group named by its folder, so `-m engine` etc. select them."""
    for item in items:
        parts = Path(str(item.fspath)).relative_to(REPO / "tests").parts
        if parts and parts[0] in GROUPS and parts[0] != "unit":
            item.add_marker(getattr(pytest.mark, parts[0]))


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """A Docker SDK client for the engine the course uses; fail (under make test) or skip without one."""
    from portbinding.discovery import find_engine
    from portbinding.errors import EngineUnavailable

    try:
        client, _ = find_engine()
    except EngineUnavailable as exc:
        message = f"no container engine answers: {exc}"
        if engine_required():
            pytest.fail(message + " (make test requires one; run `portbinding doctor`)")
        pytest.skip(message)
    yield client
    client.close()


@pytest.fixture(scope="session")
def staged() -> Staged:
    """A world-readable copy of the checkout and its venv, for tests that run as another user."""
    if os.geteuid() != 0:
        pytest.fail("running the course as another user needs root; run this under make test")
    return stage()
