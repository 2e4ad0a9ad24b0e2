"""Lesson 06's runtime contract on the real engine: each clause judged from live evidence.

The process engine declares no health checks (it runs the image folders' servers as processes),
so the contract is checked where images carry a HEALTHCHECK. Rootless Podman keeps them declared
but runs none without systemd's timers (this machine has none): there the health clause stays
open, and says why.
"""

from __future__ import annotations

import pytest

from portbinding.command import parse_run
from portbinding.engine import Engine
from portbinding.lesson import check_contract

pytestmark = pytest.mark.engines("docker", "podman", reason="health checks come from the image's HEALTHCHECK")


@pytest.mark.engines("docker", reason="the engine must run the health check (rootless Podman here runs none)")
def test_a_published_tagged_healthy_service_with_its_previous_version_keeps_every_clause(
    engine: Engine, host_port: int
) -> None:
    service = engine.run(parse_run(f"docker run -d -p 127.0.0.1:{host_port}:8000 scoring-api:2.0"))
    clauses = check_contract(engine, service, container_port=8000, previous="scoring-api:1.0")
    assert [c.name for c in clauses] == [
        "version tag",
        "explicit config",
        "health check",
        "dependency connectivity",
        "rollback",
    ], clauses
    assert all(c.kept for c in clauses), "\n".join(map(str, clauses))
    assert str(clauses[0]) == "[x] version tag              runs scoring-api:2.0", str(clauses[0])


def test_an_unpublished_service_without_its_previous_version_breaks_those_clauses_and_says_why(
    engine: Engine,
) -> None:
    service = engine.run(parse_run("docker run -d scoring-api:2.0"))
    judged = check_contract(engine, service, container_port=8000, previous="scoring-api:0.9")
    clauses = {c.name: c for c in judged}
    assert not clauses["dependency connectivity"].kept, clauses["dependency connectivity"]
    assert not clauses["rollback"].kept and "scoring-api:0.9 is missing" in clauses["rollback"].evidence, (
        clauses["rollback"]
    )
    assert clauses["version tag"].kept, clauses["version tag"]
    assert "HEALTHCHECK declared: True" in clauses["health check"].evidence, clauses["health check"]
