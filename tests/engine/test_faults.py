"""Faults during set-up: each gives a clear message, a non-zero exit, and leaves nothing half-built.

The engine-killing and disk-filling cases run on a scratch dockerd (see scratch_engine.py), never
on the engine the rest of the suite uses.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from portbinding.builder import BuildEvent, build_images
from portbinding.errors import ImageBuildError, ImageMissing
from portbinding.images import LOCAL_BASE
from portbinding.paths import images_dir
from tests.support.scratch_engine import ScratchEngine, load_base, scratch_engine, start_scratch_engine
from tests.support.staging import Staged, bare_env, run_as

CLI = [sys.executable, "-m", "portbinding"]
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="starting a scratch dockerd needs root")


def test_unknown_image_name_is_a_clear_error_before_any_work(docker_client: docker.DockerClient) -> None:
    """`portbinding images build nope` names the known images and exits 2 without a traceback."""
    with pytest.raises(ImageMissing, match="no exercise image called 'nope'"):
        build_images(docker_client, ["nope"])
    result = subprocess.run([*CLI, "images", "build", "nope"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "notebook-loopback" in result.stderr and "Traceback" not in result.stderr, result.stderr


@needs_root
def test_no_engine_and_not_root_says_what_to_install(
    docker_client: docker.DockerClient, staged: Staged
) -> None:
    """Without an engine and without root, doctor says what to install and exits 3."""
    result = run_as([*staged.cli(), "doctor", "--install"], bare_env(), hide_sockets=True)
    assert result.returncode == 3, (result.returncode, result.stdout, result.stderr)
    assert "No container engine answers" in result.stderr, result.stderr
    assert "install Docker" in result.stderr and "Traceback" not in result.stderr, result.stderr


@needs_root
def test_permission_denied_on_the_socket_is_explained(
    docker_client: docker.DockerClient, staged: Staged
) -> None:
    """A user outside the docker group is told about the group (or rootless Podman), exit 3."""
    if not Path("/var/run/docker.sock").exists():
        pytest.fail("the default Docker socket should exist while the engine runs")
    result = run_as([*staged.cli(), "doctor"], bare_env())
    assert result.returncode == 3, (result.returncode, result.stderr)
    assert "permission denied" in result.stderr and "docker` group" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr


@pytest.fixture
def images_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of images/ that a test may break; the builder reads it instead."""
    target = tmp_path / "images"
    shutil.copytree(images_dir(), target)
    monkeypatch.setenv("PORTBINDING_IMAGES_DIR", str(target))
    monkeypatch.setenv("PORTBINDING_BASE_IMAGE", LOCAL_BASE)
    return target


def _insert_step(dockerfile: Path, step: str) -> None:
    """Add ``step`` right after the first FROM line of ``dockerfile``."""
    lines = dockerfile.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("FROM"))
    lines.insert(at + 1, step)
    dockerfile.write_text("\n".join(lines) + "\n")


@pytest.fixture
def scratch(docker_client: docker.DockerClient) -> Iterator[ScratchEngine]:
    if os.geteuid() != 0:
        pytest.skip("starting a scratch dockerd needs root")
    with scratch_engine(size_mb=400) as engine:
        load_base(docker_client, engine)
        yield engine


def _tags(client: docker.DockerClient) -> set[str]:
    return {tag for image in client.images.list() for tag in image.tags}


@pytest.mark.engines("docker", reason="builds on a scratch dockerd")
def test_a_full_disk_during_a_build_is_explained_and_nothing_is_tagged(
    scratch: ScratchEngine, images_copy: Path
) -> None:
    """Filling the engine's disk mid-build: "the disk is full", and no slow-start tag exists."""
    _insert_step(images_copy / "slow-start" / "Dockerfile", "RUN head -c 600000000 /dev/zero > /tmp/fill")
    with pytest.raises(ImageBuildError, match="disk is full") as caught:
        build_images(scratch.client, ["slow-start"])
    assert "docker system prune" in str(caught.value), str(caught.value)
    assert not any("slow-start" in tag for tag in _tags(scratch.client)), _tags(scratch.client)


@pytest.mark.engines("docker", reason="builds on a scratch dockerd")
def test_the_engine_dying_during_a_build_is_explained_and_nothing_is_tagged(
    scratch: ScratchEngine, images_copy: Path
) -> None:
    """Killing dockerd mid-build: "stopped answering"; after a restart, no slow-start tag exists."""
    _insert_step(
        images_copy / "slow-start" / "Dockerfile",
        'RUN python3 -c "import time; time.sleep(120)"  # long enough to be killed in',
    )
    killed = threading.Event()

    def progress(event: BuildEvent) -> None:
        if "time.sleep" in event.message and not killed.is_set():
            killed.set()
            scratch.kill()

    with pytest.raises(ImageBuildError, match="stopped answering") as caught:
        build_images(scratch.client, ["slow-start"], progress=progress)
    assert killed.is_set(), "the build never reached the step where the engine is killed"
    assert "nothing half-built was tagged" in str(caught.value), str(caught.value)
    restarted = start_scratch_engine(scratch.root, size_mb=400)
    try:
        assert not any("slow-start" in tag for tag in _tags(restarted.client)), _tags(restarted.client)
    finally:
        restarted.client.close()
        restarted.kill()


@needs_root
def test_image_build_cli_shows_a_friendly_message_when_the_engine_is_gone(
    docker_client: docker.DockerClient,
) -> None:
    """`portbinding images build` with no engine: exit 3, a message, no traceback."""
    result = run_as([*CLI, "images", "build"], bare_env(), hide_sockets=True, user=None)
    assert result.returncode == 3, result.stderr
    assert "No container engine answers" in result.stderr and "Traceback" not in result.stderr, result.stderr
