"""Diagnosis on the real engine: every cause is recognised, its suggested fix really works, and
the CLI and the port map agree on every scenario."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from docker.models.containers import Container

from portbinding.command import RunSpec
from portbinding.diagnose import diagnose, look_inside
from portbinding.diagnose.ladder import cli_program
from portbinding.engine import Engine, free_port
from portbinding.ports import parse_publish
from portbinding.probe import wait_until, wait_until_ready
from portbinding.scenarios import SCENARIOS, Scenario
from portbinding.widgets import PortMapDiagram
from portbinding.widgets.portmap import HOP_OF
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
    _views_agree(engine, broken, item)
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


def _views_agree(engine: Engine, container: Container, item: Scenario) -> None:
    """The CLI's --json and the port map tell the same story: the CLI's cause is the diagram's red hop."""
    args = ["--port", str(item.container_port), "--expect", item.expect, "--path", item.path, "--json"]
    result = subprocess.run(
        [sys.executable, "-m", "portbinding", "diagnose", str(container.name), *args],
        capture_output=True, text=True, timeout=120, check=False, env=dict(os.environ),
    )  # fmt: skip
    assert result.returncode in (0, 1), f"{item.id}: the CLI failed: {result.stderr}"
    payload = json.loads(result.stdout)
    hops = PortMapDiagram(engine=engine).show(
        container, item.container_port, expect=item.expect, path=item.path
    )
    red = [hop.key for hop in hops if hop.ok is False]
    expected = [HOP_OF[payload["cause"]]] if HOP_OF[payload["cause"]] else []
    assert payload["cause"] == item.cause and red == expected, (
        f"{item.id}: the CLI says {payload['cause']}, the port map's broken hops are {red}"
    )
    if payload["cause"] == "ok":
        assert all(hop.ok for hop in hops), f"{item.id}: ok, yet the diagram shows {hops}"


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


def test_diagnosis_serialises_to_json_with_stable_keys_and_provenance(engine: Engine, host_port: int) -> None:
    """cause, evidence and fix keep their keys; every piece of evidence says where it came from."""
    container = engine.run(SCENARIOS[0].with_host_port(host_port, spec=SCENARIOS[0].run).replace(publish=()))
    assert wait_until(lambda: bool(look_inside(engine, container)[0]), timeout=30), "Jupyter never listened"
    found = diagnose(engine, container, container_port=8888)
    payload = json.loads(json.dumps(found.to_dict()))
    assert {"cause", "summary", "evidence", "fix"} <= set(payload), payload.keys()
    assert {"summary", "run", "config_change"} <= set(payload["fix"]), payload["fix"]
    evidence = payload["evidence"]
    kept = {"status", "exit_code", "published", "listeners", "inside", "host_probe", "log_tail"}
    assert kept <= set(evidence), f"evidence lost keys: {kept - set(evidence)}"
    assert evidence["status"] == "running", evidence
    assert evidence["provenance"]["listeners"] in ("exec", "procfs", "helper"), evidence["provenance"]
    assert evidence["provenance"]["state"] == "engine", evidence["provenance"]
    trail = evidence["trail"]
    assert trail and all({"layer", "what", "shows", "command", "source"} <= set(item) for item in trail), (
        trail
    )
    program = cli_program(engine.info.kind)
    assert any(item["command"] == f"{program} port {container.name}" for item in trail), trail
