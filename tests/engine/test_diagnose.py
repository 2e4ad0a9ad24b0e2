"""Diagnosis on the real engine: every cause is recognised, and its suggested fix really works."""

from __future__ import annotations

import json

import pytest

from portbinding.command import RunSpec
from portbinding.diagnose import diagnose, look_inside
from portbinding.engine import Engine, free_port
from portbinding.ports import parse_publish
from portbinding.probe import wait_until, wait_until_ready
from portbinding.scenarios import SCENARIOS, Scenario
from tests.support.settle import settle


def _with_free_host_ports(spec: RunSpec, item: Scenario) -> RunSpec:
    return item.with_host_port(free_port(), spec=spec)


@pytest.mark.parametrize("item", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_each_cause_is_diagnosed_and_its_fix_makes_the_port_reachable(engine: Engine, item: Scenario) -> None:
    """Run the scenario, diagnose it, run the diagnosis's own fix, and reach the service."""
    broken = engine.run(item.with_host_port(free_port()))
    settle(engine, broken, item)
    found = diagnose(engine, broken, container_port=item.container_port, expect=item.expect, path=item.path)
    assert found.cause == item.cause, f"{item.id}: diagnosed {found.cause}\n{found.explain()}"
    assert found.fix.run is not None, f"{item.id}: no run line in the fix\n{found.explain()}"
    # The catalogue's fix (what lessons and the grader teach) is the one the diagnosis derives.
    same_port = free_port()
    derived = item.with_host_port(same_port, spec=found.fix.run).to_cli()
    catalogue = item.with_host_port(same_port, spec=item.fix).to_cli()
    assert derived == catalogue, f"{item.id}: diagnosis suggests {derived}, the catalogue {catalogue}"

    if item.cause != "still_starting":
        engine.remove(broken)  # a fixed line may reuse the name
    fixed_spec = _with_free_host_ports(found.fix.run, item)
    fixed = engine.run(fixed_spec)
    port = fixed_spec.publish[0].container_port
    result = wait_until_ready(engine, fixed, port, path=item.path, timeout=40)
    assert result.ok, f"{item.id}: the fix {fixed_spec.to_cli()} is not reachable: {result.detail}"
    again = diagnose(engine, fixed, container_port=port, expect=item.expect, path=item.path)
    assert again.cause == "ok", f"{item.id}: after the fix, diagnosed {again.cause}\n{again.explain()}"


def test_diagnosis_works_on_a_container_that_is_not_a_course_image(engine: Engine, host_port: int) -> None:
    """A plain Python web server bound to 127.0.0.1 in the base image is diagnosed loopback_only."""
    spec = RunSpec(
        image="portbinding/python-base:bookworm",
        publish=tuple(parse_publish(f"{host_port}:8000")),
        command=("python3", "-m", "http.server", "8000", "--bind", "127.0.0.1"),
    )
    container = engine.run(spec)
    assert wait_until(lambda: bool(look_inside(engine, container)[0]), timeout=20), (
        "http.server never listened"
    )
    found = diagnose(engine, container)
    assert found.cause == "loopback_only", found.explain()
    assert found.evidence.container_port == 8000, "the published port should be the default port"
    assert "0.0.0.0" in (found.fix.config_change or ""), found.fix


def test_diagnosis_serialises_to_json_with_stable_keys(engine: Engine, host_port: int) -> None:
    """to_dict() has cause, summary, evidence and fix, and is JSON-serialisable."""
    container = engine.run(SCENARIOS[0].with_host_port(host_port, spec=SCENARIOS[0].run).replace(publish=()))
    found = diagnose(engine, container, container_port=8888)
    payload = json.loads(json.dumps(found.to_dict()))
    assert set(payload) == {"cause", "summary", "evidence", "fix"}, payload.keys()
    assert set(payload["fix"]) == {"summary", "run", "config_change"}, payload["fix"]
    assert payload["evidence"]["status"] == "running", payload["evidence"]
