"""The course images on rootless Podman: copied from Docker, and which are missing or stale.

Podman does not build the images itself: the same references are ``docker save``-d from Docker
and ``podman load``-ed as the Podman user, so both engines run byte-identical images (``podman
load`` keeps Docker's image id). Set-up of the Podman user and service is :mod:`podman`'s job.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import docker
import docker.errors
import requests.exceptions

from portbinding.discovery import connect
from portbinding.errors import EngineUnavailable, ImageMissing, PodmanUnavailable
from portbinding.images import CONTEXT_LABEL, DEFAULT_BASE, IMAGES, LOCAL_BASE, SOURCE_LABEL, short_name

LOGGER = logging.getLogger(__name__)


def course_references(docker_client: docker.DockerClient) -> list[str]:
    """Every reference the course runs: each tag of each exercise image, and the base image.

    The base is used on its own as well (a plain ``python3 -m http.server`` to diagnose), so
    whichever base Docker has goes across with the exercise images.
    """
    references = [tag for image in IMAGES for tag in image.tags]
    for base in (LOCAL_BASE, DEFAULT_BASE):
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.get(base)
            references.append(base)
    return references


def stale_references(docker_client: docker.DockerClient, podman_client: docker.DockerClient) -> list[str]:
    """The course references Podman lacks, or holds as another build than Docker's.

    ``podman load`` keeps Docker's image id (both are the digest of the image config), so equal
    ids mean the same image; equal build fingerprints and source labels (images.CONTEXT_LABEL,
    SOURCE_LABEL) mean the same inputs, which is as good.
    """
    stale = []
    for reference in course_references(docker_client):
        try:
            source = docker_client.images.get(reference)
        except docker.errors.ImageNotFound:
            raise ImageMissing(
                f"{reference} is not on Docker, so it cannot be copied to Podman.",
                hint=f"build it on Docker first (`portbinding images build {short_name(reference)}`), "
                "then run this again",
            ) from None
        try:
            copy = podman_client.images.get(reference)
        except docker.errors.ImageNotFound:
            stale.append(reference)
            continue
        labels, copied = source.labels or {}, copy.labels or {}
        same_inputs = bool(labels.get(CONTEXT_LABEL)) and all(
            copied.get(label) == labels.get(label) for label in (CONTEXT_LABEL, SOURCE_LABEL)
        )
        if copy.id != source.id and not same_inputs:
            stale.append(reference)
    return stale


def stale_references_between(docker_url: str, podman_url: str) -> list[str] | None:
    """What needs copying; None when an engine cannot be asked (a user without access to Docker)."""
    try:
        with (
            contextlib.closing(connect(docker_url, timeout=10)) as docker_client,
            contextlib.closing(connect(podman_url, timeout=10)) as podman_client,
        ):
            return stale_references(docker_client, podman_client)
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        LOGGER.info("cannot compare the course images on Docker and Podman: %s", exc)
        return None


def copy_images(
    docker_url: str,
    podman_url: str,
    *,
    as_user: Callable[[Sequence[str]], list[str]],
    cwd: Path,
    progress: Callable[[str], None],
) -> None:
    """``docker save`` the stale references into ``podman load`` run as the user, in one stream.

    ``as_user`` turns a command into one that runs as the Podman user (``PodmanAccount.command``).
    """
    try:
        with (
            contextlib.closing(connect(docker_url, timeout=10)) as docker_client,
            contextlib.closing(connect(podman_url, timeout=10)) as podman_client,
        ):
            stale = stale_references(docker_client, podman_client)
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise EngineUnavailable(
            f"The course images are copied from Docker ({docker_url}), which did not answer: {exc}",
            hint="start Docker (`portbinding doctor --install`) and build the images "
            "(`portbinding images build`), then run this again",
        ) from exc
    if not stale:
        return
    docker_cli = shutil.which("docker")
    if docker_cli is None:
        raise PodmanUnavailable(
            "The docker command is not installed, so the images cannot be saved from Docker.",
            hint="install Debian's docker.io (it provides the docker command), then run this again",
        )
    progress(f"Copying {len(stale)} image reference(s) from Docker to Podman: {', '.join(stale)}...")
    with tempfile.TemporaryFile() as save_errors:
        saver = subprocess.Popen(
            [docker_cli, "--host", docker_url, "save", *stale],
            stdout=subprocess.PIPE,
            stderr=save_errors,
            stdin=subprocess.DEVNULL,
        )
        assert saver.stdout is not None  # for mypy: stdout=PIPE
        loader = subprocess.Popen(
            as_user(["podman", "load"]),
            stdin=saver.stdout,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
        )
        saver.stdout.close()  # only podman load reads it now, so docker save sees it stop reading
        try:
            loaded, _ = loader.communicate(timeout=900)
            saved = saver.wait(timeout=60)
        except subprocess.TimeoutExpired as exc:
            for process in (saver, loader):
                process.kill()
                process.wait(timeout=10)
            raise PodmanUnavailable(
                "Copying the images from Docker to Podman did not finish within 15 minutes.",
                hint="check the free disk space (`df -h /home`), then run this again",
            ) from exc
        save_errors.seek(0)
        save_text = save_errors.read().decode(errors="replace").strip()
    if saved != 0 or loader.returncode != 0:
        load_text = loaded.decode(errors="replace").strip()
        raise PodmanUnavailable(
            f"Copying the images failed: docker save exited {saved} ({save_text[-300:] or 'no output'}), "
            f"podman load exited {loader.returncode} ({load_text[-300:] or 'no output'}).",
            hint="read the messages above (a full disk is the usual cause), then run this again",
        )
    # A reloaded tag leaves the image it pointed at untagged: drop those, not images in use.
    subprocess.run(
        as_user(["podman", "image", "prune", "--force"]),
        capture_output=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )
