"""The Engine door on the real engine: labels, limits, cleanup, and an error type for each fault."""

from __future__ import annotations

import os
import socket

import docker
import pytest

from portbinding.command import parse_run
from portbinding.diagnose import diagnose
from portbinding.discovery import EngineInfo
from portbinding.engine import COURSE_LABEL, OWNER_LABEL, SESSION_LABEL, Engine, free_port
from portbinding.errors import ContainerNotFound, EngineUnavailable, ImageMissing, PortInUse
from portbinding.probe import wait_until_ready
from tests.support.scratch_engine import scratch_engine


@pytest.mark.engines(
    "docker",
    reason="rootless Podman without cgroup v2 delegation ignores the limits (HostConfig.Memory reads 0); "
    "test_podman.py checks the labels there and what the limits read",
)
def test_containers_are_labelled_and_limited(engine: Engine, host_port: int) -> None:
    """Every container carries the course, session and owner labels and memory/pids/CPU limits."""
    container = engine.run(parse_run(f"docker run -d -p 127.0.0.1:{host_port}:8000 scoring-api:1.0"))
    container.reload()
    labels = container.labels
    assert labels[COURSE_LABEL] == "port-binding-lab" and labels[SESSION_LABEL] == engine.session, labels
    assert labels[OWNER_LABEL] == engine.owner, labels
    host = container.attrs["HostConfig"]
    assert host["Memory"] == 512 * 1024 * 1024, host["Memory"]
    assert host["PidsLimit"] == 128 and host["NanoCpus"] == 1_000_000_000, host


def test_a_taken_host_port_raises_port_in_use_and_leaves_no_created_container(
    engine: Engine, host_port: int
) -> None:
    """The second container on one host port: PortInUse with a free suggestion; only the first exists."""
    engine.run(parse_run(f"docker run -d -p {host_port}:8888 portbinding/notebook:1.0"))
    before = {c.id for c in engine.course_containers(session=engine.session)}
    with pytest.raises(PortInUse) as caught:
        engine.run(parse_run(f"docker run -d -p {host_port}:8888 portbinding/notebook:1.0"))
    assert caught.value.port == host_port, caught.value.port
    assert caught.value.suggestion and caught.value.suggestion != host_port, caught.value.suggestion
    assert f"-p {caught.value.suggestion}:" in str(caught.value), str(caught.value)
    after = {c.id for c in engine.course_containers(session=engine.session)}
    assert after == before, "the failed start left a Created container behind"


def _free_run(length: int) -> int:
    """The first port of ``length`` consecutive host ports that are free right now."""
    for _ in range(50):
        first = free_port()
        if first + length <= 65535 and all(_bindable(first + i) for i in range(1, length)):
            return first
    raise AssertionError(f"no {length} consecutive free ports found")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.engines(
    "docker",
    "process",
    reason="Podman refuses a host range for one container port (measured: test_ports_oracle)",
)
def test_a_host_port_range_publishes_on_one_port_of_the_range(engine: Engine) -> None:
    """-p 127.0.0.1:A-(A+2):8000 as docker run takes it: the engine picks a port of the range; it answers."""
    first = _free_run(3)
    container = engine.run(parse_run(f"docker run -d -p 127.0.0.1:{first}-{first + 2}:8000 scoring-api:1.0"))
    chosen = engine.host_port(container, 8000)
    assert chosen is not None and first <= chosen <= first + 2, (
        f"published on {chosen}, not in {first}-{first + 2}"
    )
    ready = wait_until_ready(engine, container, 8000, path="/health", timeout=30)
    assert ready.ok, f"the API did not answer on the chosen port {chosen}: {ready.detail}"


def test_an_image_that_is_not_built_says_how_to_build_it(engine: Engine) -> None:
    """A course image missing from the engine: ImageMissing pointing at `portbinding images build`."""
    spec = parse_run("docker run -d portbinding/notebook:0.0-not-built")
    with pytest.raises(ImageMissing, match="portbinding images build notebook"):
        engine.run(spec)


def test_a_container_that_does_not_exist_is_container_not_found(engine: Engine) -> None:
    """get() and diagnose() of a missing container raise ContainerNotFound with a hint."""
    with pytest.raises(ContainerNotFound, match="portbinding ps"):
        engine.get("pbl-no-such-container")
    with pytest.raises(ContainerNotFound):
        diagnose(engine, "pbl-no-such-container")


def test_exec_is_killed_after_its_timeout(engine: Engine) -> None:
    """exec() of a command that hangs returns timed_out after about the timeout, not never."""
    container = engine.run(parse_run("docker run -d scoring-api:1.0"))
    result = engine.exec(container, ["python3", "-c", "import time; time.sleep(60)"], timeout=1)
    assert result.timed_out, result


def test_stream_logs_yields_the_app_s_lines(engine: Engine) -> None:
    """stream_logs() yields whole lines as the container writes them, and ends when it exits."""
    container = engine.run(parse_run("docker run -d portbinding/crash-before-listen:1.0"))
    lines = list(engine.stream_logs(container))
    assert any("MODEL_PATH is not set" in line for line in lines), lines


def test_leaving_the_with_block_removes_the_session_s_containers_even_after_an_error(
    session_engine: Engine, course_images: object
) -> None:
    """`with Engine(...)`: an exception inside still removes every container of that session."""
    client = session_engine.client
    inner = Engine(client, session_engine.info, owner="tests")
    with pytest.raises(RuntimeError), inner:  # noqa: PT012 -- the error must happen inside the block
        inner.run(parse_run("docker run -d scoring-api:1.0"))
        raise RuntimeError("the learner's cell failed")
    left = client.containers.list(all=True, filters={"label": f"{SESSION_LABEL}={inner.session}"})
    assert not left, [c.name for c in left]


def test_cleanup_of_a_session_removes_its_containers_and_no_one_else_s(engine: Engine) -> None:
    """cleanup(session=mine) removes my containers; another session's and unlabelled ones stay."""
    other_session = Engine(engine.client, engine.info, owner="tests")
    theirs = other_session.run(parse_run("docker run -d scoring-api:1.0"))
    unlabelled = engine.client.containers.create("portbinding/python-base:bookworm", ["true"])
    try:
        mine = engine.run(parse_run("docker run -d scoring-api:1.0"))
        removed = engine.cleanup(session=engine.session)
        assert removed == [mine.name], removed
        theirs.reload()  # raises NotFound if cleanup overreached
        unlabelled.reload()
    finally:
        other_session.cleanup(session=other_session.session)
        unlabelled.remove(force=True)


def test_cleanup_without_a_session_sweeps_every_course_container(engine: Engine) -> None:
    """cleanup() with no session is the sweeper: it removes course containers of any session."""
    other_session = Engine(engine.client, engine.info, owner="tests")
    theirs = other_session.run(parse_run("docker run -d scoring-api:1.0"))
    unlabelled = engine.client.containers.create("portbinding/python-base:bookworm", ["true"])
    try:
        removed = engine.cleanup()
        assert theirs.name in removed, removed
        unlabelled.reload()  # not a course container: untouched
    finally:
        unlabelled.remove(force=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="starting a scratch dockerd needs root")
def test_a_stopped_engine_is_engine_unavailable_everywhere(docker_client: docker.DockerClient) -> None:
    """Kill the engine: listing, running and cleaning up each raise EngineUnavailable with a hint."""
    with scratch_engine(size_mb=64) as scratch:
        info = EngineInfo(scratch.url, "test", "docker", "?", "?", False, "127.0.0.1", "test")
        dead = Engine(docker.DockerClient(base_url=scratch.url, timeout=5), info, owner="tests")
        scratch.kill()
        for action in (
            dead.course_containers,
            lambda: dead.run(parse_run("docker run scoring-api:1.0")),
            dead.cleanup,
        ):
            with pytest.raises(EngineUnavailable, match="portbinding doctor"):
                action()
