"""Compose on the real engine, with both front ends: `docker compose` (v2+) and `docker-compose` (v1).

The same two-service file -- the scoring API calling its database at localhost, the classic
mistake -- is brought up by each front end; ``portbinding diagnose --compose db --from api``
must find the right containers by their Compose labels (v1 names them ``proj_db_1``, v2
``proj-db-1``) and say, in the Compose file's words, what to change. Then the fixed file works.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from portbinding.compose import find_service, front_ends, service_containers
from portbinding.diagnose import diagnose
from portbinding.engine import Engine
from portbinding.errors import ContainerNotFound, UnknownName
from portbinding.probe import wait_until
from tests.support.compose import ComposeCLI, compose_front_ends, compose_project, labels_yaml

pytestmark = pytest.mark.engines("docker", reason="Compose drives the Docker Engine API of a real dockerd")

FILE = """\
version: "2.4"
services:
  db:
    image: portbinding/redis:1.0
    labels:
{labels}
  api:
    image: portbinding/scoring-api:1.0
    environment:
      DATABASE_URL: "redis://{host}:6379/0"
    ports:
      - "127.0.0.1::8000"
    depends_on:
      db:
        condition: service_healthy
    labels:
{labels}
networks:
  default:
    labels:
{labels}
"""


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ComposeCLI]:
    return compose_front_ends(tmp_path_factory.mktemp("docker-config"))


def _file(engine: Engine, host: str) -> str:
    return FILE.format(labels=labels_yaml(engine, "compose-test", 6), host=host)


def _cli(engine: Engine, env: dict[str, str], *args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "portbinding", "diagnose", "--json", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "DOCKER_HOST": engine.info.url},
        check=False,
    )
    assert done.stdout.strip(), f"portbinding diagnose {args} printed nothing: {done.stderr}"
    return dict(json.loads(done.stdout))


@pytest.mark.parametrize("kind", ["plugin", "v1"])
def test_diagnose_compose_finds_the_services_and_says_what_to_change(
    engine: Engine, front: dict[str, ComposeCLI], tmp_path: Path, kind: str
) -> None:
    """Each front end's containers are found by service; the fix names the service and its file."""
    cli = front[kind]
    with compose_project(cli, tmp_path / kind, _file(engine, "localhost"), prefix=f"pbl{kind}") as project:
        db = find_service(engine, "db", project=project)
        api = find_service(engine, "api", project=project)
        separator = "_" if kind == "v1" else "-"
        assert db.name == f"{project}{separator}db{separator}1", f"{cli.label} named it {db.name}"
        found = _cli(
            engine, cli.env, "--compose", "db", "--project", project, "--from", "api", "--port", "6379"
        )
        assert found["cause"] == "peer_localhost", f"{cli.label}: {found['cause']} {found['fix']}"
        fix = found["fix"]
        assert isinstance(fix, dict), fix
        assert fix["config_change"] == "DATABASE_URL=redis://db:6379/0", f"{cli.label}: {fix}"
        assert "docker compose up -d api" in str(fix["summary"]), fix["summary"]
        peer = diagnose(engine, db, peer=api, container_port=6379).evidence.peer
        assert peer is not None and peer.service == "api" and peer.server_names[0] == "db", peer
    with compose_project(
        cli, tmp_path / f"{kind}-fixed", _file(engine, "db"), prefix=f"pbl{kind}"
    ) as project:
        api = find_service(engine, "api", project=project)
        fixed = diagnose(engine, find_service(engine, "db", project=project), peer=api, container_port=6379)
        assert fixed.cause == "ok", f"{cli.label}, fixed file: {fixed.cause}\n{fixed.explain()}"
        assert wait_until(lambda: _health(engine, str(api.name)) == "ok", timeout=20), (
            f"{cli.label}: the fixed API never reached its database"
        )
    assert not service_containers(engine, project=project), f"{cli.label} down left containers behind"


def _health(engine: Engine, name: str) -> str:
    code = "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8000/health', timeout=15).read())"
    result = engine.exec(engine.get(name), ["python3", "-c", code], timeout=25)  # a loaded machine
    return "ok" if '"database": "ok"' in result.output else result.output


def test_a_service_in_two_projects_needs_the_project_and_a_missing_one_lists_what_exists(
    engine: Engine, front: dict[str, ComposeCLI], tmp_path: Path
) -> None:
    """Two projects with the same services (one per front end): the lookup asks which, by name."""
    with (
        compose_project(front["plugin"], tmp_path / "a", _file(engine, "db"), prefix="pbla") as first,
        compose_project(front["v1"], tmp_path / "b", _file(engine, "db"), prefix="pblb") as second,
    ):
        with pytest.raises(UnknownName) as asked:
            find_service(engine, "db")
        assert first in str(asked.value) and second in str(asked.value), str(asked.value)
        assert "--project" in asked.value.hint, asked.value.hint
        with pytest.raises(ContainerNotFound) as missing:
            find_service(engine, "nope", project=first)
        assert "api" in missing.value.hint and "db" in missing.value.hint, missing.value.hint


def test_doctor_names_both_front_ends(engine: Engine, front: dict[str, ComposeCLI]) -> None:
    """`portbinding doctor --json` reports each front end it finds, with its version and kind, and the
    learner's row of lesson 07's laptop-engines table."""
    env = front["plugin"].env
    kinds = {item.kind for item in front_ends(env=env)}
    assert {"plugin", "v1"} <= kinds, kinds
    done = subprocess.run(
        [sys.executable, "-m", "portbinding", "doctor", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        check=False,
    )
    report = json.loads(done.stdout)
    seen = {(item["command"], item["kind"]) for item in report["compose"]}
    assert ("docker compose", "plugin") in seen and ("docker-compose", "v1") in seen, seen
    assert report["laptop_row"] == "linux", report["laptop_row"]


def test_the_lesson_terminal_runs_no_compose_or_network_line_that_would_escape_its_labels(
    engine: Engine, tmp_path: Path
) -> None:
    """What the terminal would pass on unchecked -- a second file merged in, options that hide the
    command, ``start`` of a refused file, ``docker network prune`` -- is refused in words, and no
    network appears (an unlabelled one would outlive the lesson on a shared engine)."""
    from portbinding.lesson.services import compose_command, network_command, project_name

    good = tmp_path / "docker-compose.yml"
    good.write_text(_file(engine, "db"))
    evil = tmp_path / "more.yml"
    evil.write_text("services:\n  db:\n    network_mode: host\nnetworks:\n  appnet: {}\n")
    before = {n.name for n in engine.client.networks.list()}
    lines = {
        "two files": ["docker", "compose", "-f", str(good), "-f", str(evil), "up", "-d"],
        "options first": ["docker", "compose", "-f", str(good), "--profile", "x", "up", "-d"],
        "start, refused file": ["docker-compose", "-f", str(evil), "start"],
    }
    for what, words in lines.items():
        said, code, _ = compose_command(engine, words, cwd=tmp_path)
        assert code != 0, f"{what}: {' '.join(words)} should be refused, ran: {said}"
    said = compose_command(engine, lines["two files"], cwd=tmp_path)[0]
    assert "one Compose file" in said, f"two files should be refused as such: {said}"
    said = compose_command(engine, lines["start, refused file"], cwd=tmp_path)[0]
    assert "policy" in said, f"start on a refused file should meet the course check: {said}"
    said, code, _ = network_command(engine, ["docker", "network", "prune", "-f"]) or ("ran", 0, "cli")
    assert code == 1 and "not run from a lesson" in said, said
    assert network_command(engine, ["docker", "network", "ls"]) is None, "ls is read-only: the CLI runs it"
    made = {n.name for n in engine.client.networks.list()} - before
    mine = {name for name in made if name.startswith(project_name(engine)) or "appnet" in name}
    assert not mine, f"a refused line made networks: {mine}"
