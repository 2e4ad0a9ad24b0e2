"""terminal() on the real engine: the docker CLI is the oracle for what the API stand-in prints.

Where no docker CLI can reach the engine (Binder's process engine), terminal() reads the same
evidence through the engine's API and prints it in the CLI's format. A learner who later types
the command must see the same thing, so here both run on one container and are compared.
"""

from __future__ import annotations

import json

import pytest

from portbinding.command import parse_run
from portbinding.engine import Engine
from portbinding.errors import PortBindingError
from portbinding.lesson.terminal import _api, terminal
from portbinding.procnet import listeners_from_proc, split_cat_output
from portbinding.widgets._live import wait_listening

pytestmark = pytest.mark.engines("docker", reason="the docker CLI is the oracle for the API's stand-in")


def _both(engine: Engine, line: str) -> tuple[str, str]:
    """(what the docker CLI printed, what the API stand-in printed, minus its one-line note)."""
    cli = terminal(line, engine=engine, show=False)
    assert cli.via == "cli" and cli.ok, f"{line}: the docker CLI failed: {cli.output}"
    words = line.split()
    stand_in = _api(engine, line, words, words[1])
    assert stand_in.ok, f"{line}: the API stand-in failed: {stand_in.output}"
    note, _, output = stand_in.output.partition("\n")
    assert "API" in note, f"the stand-in says it is one: {note!r}"
    return cli.output.strip(), output.strip()


def test_the_api_stand_in_prints_what_the_docker_cli_prints(engine: Engine, host_port: int) -> None:
    """docker port (all, and one port), logs, exec cat /proc/net/tcp and inspect -f agree with the CLI."""
    container = engine.run(parse_run(f"docker run -d -p 127.0.0.1:{host_port}:8000 scoring-api:1.0"))
    assert wait_listening(engine, container, timeout=30).listening, "the scoring API never listened"
    name = container.name

    for line in (f"docker port {name}", f"docker port {name} 8000", f"docker logs --tail 5 {name}"):
        cli, stand_in = _both(engine, line)
        assert cli == stand_in, f"{line}\n  CLI:      {cli!r}\n  stand-in: {stand_in!r}"

    cli, stand_in = _both(engine, f"docker exec {name} cat /proc/net/tcp /proc/net/tcp6")
    assert listeners_from_proc(*split_cat_output(cli)) == listeners_from_proc(*split_cat_output(stand_in)), (
        f"the LISTEN rows differ:\n{cli}\n---\n{stand_in}"
    )

    template = "{{.State.Status}} {{json .NetworkSettings.Ports}}"
    shown = terminal(f"docker inspect -f '{template}' {name}", engine=engine, show=False).output
    replaced = _api(engine, "", ["docker", "inspect", "-f", template, name], "inspect").output.partition(
        "\n"
    )[2]
    (status_cli, ports_cli), (status_api, ports_api) = (s.split(" ", 1) for s in (shown, replaced))
    assert status_cli == status_api == "running", f"{shown!r} vs {replaced!r}"
    assert json.loads(ports_cli) == json.loads(ports_api), f"{ports_cli} vs {ports_api}"


def test_docker_run_through_terminal_is_labelled_and_docker_rm_removes_it(
    engine: Engine, host_port: int
) -> None:
    """A run line goes through the course's engine (so end_lesson() sees it); rm takes it away again."""
    shown = terminal(
        f"docker run -d -p 127.0.0.1:{host_port}:8000 scoring-api:1.0", engine=engine, show=False
    )
    assert shown.ok and shown.container is not None, shown.output
    assert shown.container.labels.get("portbinding.session") == engine.session, shown.container.labels
    removed = terminal(f"docker rm -f {shown.container.name}", engine=engine, show=False)
    assert removed.ok and removed.output == shown.container.name, removed.output
    assert not engine.course_containers(session=engine.session), "docker rm -f left the container"


def test_terminal_leaves_containers_of_others_alone(
    engine: Engine, session_engine: Engine, host_port: int
) -> None:
    """rm/stop by name only for the lesson's own containers: someone else's is refused, with the way out."""
    with Engine(session_engine.client, session_engine.info, owner="tests") as other:
        theirs = other.run(parse_run(f"docker run -d -p 127.0.0.1:{host_port}:8000 scoring-api:1.0"))
        refused = terminal(f"docker rm -f {theirs.name}", engine=engine, show=False)
        assert not refused.ok, f"removed another session's container: {refused.output}"
        assert "not started by this lesson" in refused.output, refused.output
        assert other.is_running(theirs), "the other session's container must still run"


def test_verbs_that_change_the_engine_are_left_to_a_real_terminal(
    engine: Engine, session_engine: Engine, host_port: int
) -> None:
    """kill, prune and their like never run from a lesson cell, even on the lesson's own container."""
    mine = engine.run(parse_run(f"docker run -d -p 127.0.0.1:{host_port}:8000 scoring-api:1.0"))
    for line in (f"docker kill {mine.name}", "docker system prune -f", "docker container prune -f"):
        shown = terminal(line, engine=engine, show=False)
        assert shown.exit_code == 2 and "real terminal" in shown.output, (line, shown.output)
    assert engine.is_running(mine), "a refused docker kill reached the engine"


def test_a_policy_refusal_is_shown_like_the_cli_shows_an_error(engine: Engine) -> None:
    """A forbidden option never reaches the engine: the line fails with the course's reason."""
    shown = terminal("docker run -d --privileged scoring-api:1.0", engine=engine, show=False)
    assert not shown.ok and shown.output.startswith("docker: "), shown.output
    with pytest.raises(PortBindingError):
        terminal("docker ps | grep x", engine=engine, show=False)
