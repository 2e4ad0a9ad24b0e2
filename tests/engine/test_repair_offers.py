"""A taken host port and a missing image, on the real engine: explained, and repaired with one click.

The port is held by a listening socket of the test itself. The missing image is a tag nothing
else uses (a temporary definition of the scoring API, built for real and untagged after), so no
course image another test needs is ever removed.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator

import docker
import pytest

from portbinding import images
from portbinding.builder import BuiltImage
from portbinding.engine import Engine
from portbinding.errors import ImageMissing, PortInUse
from portbinding.scenarios import scenario
from portbinding.widgets import ConceptDrill, ContainerConsole, ProbeLight

CLI = [sys.executable, "-m", "portbinding"]
JOB_TIMEOUT = 90.0
BUILD_TIMEOUT = 600.0


@pytest.fixture
def held_port() -> Iterator[int]:
    """A host port some other program holds: a socket listening on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def _offered_port(description: str) -> int:
    match = re.fullmatch(r"Use port (\d+) instead", description)
    assert match, f"no free port is offered: {description!r}"
    return int(match.group(1))


def test_console_explains_a_taken_port_and_runs_on_the_offered_one(engine: Engine, held_port: int) -> None:
    """Run on a held port: the message names it, the button re-runs the line on a free port, which answers."""
    console = ContainerConsole(engine=engine)
    light = ProbeLight(engine=engine)
    light.follow(console)
    line = scenario("ok").with_host_port(held_port).to_cli()
    with pytest.raises(PortInUse):
        console.run_line(line)
    assert f"Host port {held_port} is already taken" in console.message, console.message
    free = _offered_port(console.offer.description)
    assert free != held_port and f"“Use port {free} instead”" in console.message, console.message
    assert console.container is None, "nothing was left running"

    console.offer._button.click()
    assert console.wait_idle(JOB_TIMEOUT), "the re-run did not finish"
    assert console.container is not None, console.message
    assert f"127.0.0.1:{free}:8888" in console.line and not console.offer.description, console.line
    result = light.probe()
    assert result.ok and light.light == "green", result
    assert f":{free}/" in (result.target or "") or str(free) in result.detail, result


def test_drill_explains_a_taken_port_and_runs_on_the_offered_one(engine: Engine, held_port: int) -> None:
    """The drill's host port is held: one click runs the same drill on a free port, and it is reachable."""
    drill = ConceptDrill(engine=engine)
    drill._host_port.value = held_port
    drill._predict.value = True
    drill._run.click()
    assert drill.wait_idle(JOB_TIMEOUT) and drill.result is None, drill.message
    assert f"Host port {held_port} is already taken" in drill.message, drill.message
    free = _offered_port(drill.offer.description)
    drill.offer._button.click()
    assert drill.wait_idle(JOB_TIMEOUT), "the re-run did not finish"
    result = drill.result
    assert result is not None and result.settings.host_port == free, drill.message
    assert result.reachable_local and result.correct, result


def test_cli_run_prints_the_command_on_a_free_port(
    session_engine: Engine, held_port: int, course_images: list[BuiltImage]
) -> None:
    """`portbinding run` on a held port: exit 4, why, and the exact command on a free port -- which works."""
    session = f"test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PORTBINDING_SESSION": session}
    line = f"docker run -d -p 127.0.0.1:{held_port}:8888 portbinding/notebook:1.0"
    try:
        refused = subprocess.run(
            [*CLI, "run", "--", *shlex.split(line)], capture_output=True, text=True, timeout=120, env=env
        )
        assert refused.returncode == 4, (refused.returncode, refused.stderr)
        assert f"Host port {held_port} is already taken" in refused.stderr, refused.stderr
        match = re.search(
            r"portbinding run -- (docker run -d -p 127\.0\.0\.1:(\d+):8888 \S+)", refused.stderr
        )
        assert match and int(match.group(2)) != held_port, refused.stderr
        assert "Traceback" not in refused.stderr, refused.stderr
        ran = subprocess.run(
            [*CLI, "run", "--json", "--", *shlex.split(match.group(1))],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert ran.returncode == 0, (ran.stdout, ran.stderr)
        assert '"outcome": "ok"' in ran.stdout and f":{match.group(2)}" in ran.stdout, ran.stdout
    finally:
        session_engine.cleanup(session=session)


@pytest.fixture
def unbuilt_image(docker_client: docker.DockerClient, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A course-like image reference that is not built: the scoring API under a tag of this test only."""
    reference = f"portbinding/scoring-api:offer-{uuid.uuid4().hex[:8]}"
    # The catalogue holds only this definition meanwhile, so the build touches no course image's tags.
    monkeypatch.setattr(
        images, "IMAGES", (images.ImageDef("scoring-api", (reference,), (("API_VERSION", "1.0"),)),)
    )
    yield reference
    # Podman refuses to untag an image a container still uses (Docker untags one with other tags):
    # the test's containers go first -- the engine fixture, torn down after this one, finds none.
    # By image id, among this run's containers: Podman's ancestor filter misses a container made
    # from an image with other tags (this build is the scoring API's, so it has them).
    mine = {"label": f"portbinding.run={os.environ['PORTBINDING_RUN_ID']}"}
    with contextlib.suppress(docker.errors.ImageNotFound):
        built = docker_client.images.get(reference).id
        for user in docker_client.containers.list(all=True, filters=mine):
            if user.attrs.get("Image") == built:
                user.remove(force=True)
    try:
        docker_client.images.remove(reference, noprune=True)  # only our tag; layers stay for the cache
    except docker.errors.ImageNotFound:
        pass


@pytest.mark.engines("docker", "podman", reason="builds an image; the process engine builds nothing")
def test_console_offers_to_build_a_missing_image_then_runs_it(
    engine: Engine, unbuilt_image: str, host_port: int, docker_client: docker.DockerClient
) -> None:
    """ImageMissing: a Build button; clicking it builds the image (progress bar) and runs the line."""
    console = ContainerConsole(engine=engine)
    with pytest.raises(ImageMissing):
        console.run_line(f"docker run -d -p 127.0.0.1:{host_port}:8000 {unbuilt_image}")
    assert f"The image {unbuilt_image} is not on this engine yet" in console.message, console.message
    assert console.offer.description == f"Build {unbuilt_image}", console.offer.description
    assert (
        f"“Build {unbuilt_image}”" in console.message
        and "portbinding images build scoring-api" in console.message
    ), console.message

    console.offer._button.click()
    assert console.wait_idle(BUILD_TIMEOUT), "the build and re-run did not finish"
    assert console.container is not None, console.message
    # Podman lists every tag fully qualified (docker.io/..., localhost/...); Docker drops docker.io/.
    tags = {tag.removeprefix("docker.io/") for image in docker_client.images.list() for tag in image.tags}
    assert unbuilt_image in tags, sorted(tags)
    bars = list(console.offer.bars.children)
    assert bars and all(bar.bar_style == "success" for bar in bars), [bar.description for bar in bars]
    assert "Started" in console.message and not console.offer.description, console.message
