"""Every setting the course reads from the environment, in one place, read when asked.

Nothing here is read at import time: a test (or a notebook) that sets a variable after
``import portbinding`` is obeyed, and the names below are the only place each one is spelled.
The Docker CLI's own variables (DOCKER_HOST, DOCKER_CONFIG, DOCKER_CONTEXT) keep the meaning
the docker command gives them.
"""

from __future__ import annotations

import os
from pathlib import Path

ENGINE_ENV = "PORTBINDING_ENGINE"  # "process": the course's own engine (binder/start sets it)
RUN_ENV = "PORTBINDING_RUN_ID"  # a test or grading run: labels everything started under it
SESSION_ENV = "PORTBINDING_SESSION"  # the command line's session (default: one per user)
PUBLISH_HOST_ENV = "PORTBINDING_PUBLISH_HOST"  # where published ports are reached from here
IMAGES_DIR_ENV = "PORTBINDING_IMAGES_DIR"  # the image folders (default: shipped with the package)
CACHE_ENV = "PORTBINDING_CACHE"  # downloads and the process engine's state
BASE_IMAGE_ENV = "PORTBINDING_BASE_IMAGE"  # build the exercise images on this base
DEBIAN_MIRROR_ENV = "PORTBINDING_DEBIAN_MIRROR"  # debootstrap's mirror for the local base
DOCKERD_LOG_ENV = "PORTBINDING_DOCKERD_LOG"  # where a dockerd the course starts logs
PODMAN_USER_ENV = "PORTBINDING_PODMAN_USER"  # the user that runs rootless Podman for the course
PODMAN_LOG_ENV = "PORTBINDING_PODMAN_LOG"  # where that Podman service logs
WORKSPACE_ENV = "PORTBINDING_WORKSPACE"  # the learner's working copy of the lessons and exercises

DEFAULT_DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEFAULT_PODMAN_USER = "pblpodman"


def _get(name: str) -> str:
    """The variable's value, or "" when unset (an empty value counts as unset)."""
    return os.environ.get(name, "").strip()


def engine_choice() -> str:
    """The engine kind the learner chose (``"process"``), lower-cased; "" when none was."""
    return _get(ENGINE_ENV).lower()


def run_id() -> str:
    """The id of the test or grading run this process belongs to; "" outside one."""
    return _get(RUN_ENV)


def cli_session() -> str:
    """The session the command line's containers belong to: one per user, unless set."""
    return _get(SESSION_ENV) or f"cli-{os.getuid()}"


def publish_host() -> str:
    """Where published ports are reached, when set by hand; "" to work it out."""
    return _get(PUBLISH_HOST_ENV)


def images_dir() -> Path | None:
    """The image folders, when set by hand."""
    value = _get(IMAGES_DIR_ENV)
    return Path(value) if value else None


def cache_dir() -> Path:
    """Where downloads and the process engine's state are kept: PORTBINDING_CACHE, else ~/.cache."""
    value = _get(CACHE_ENV)
    if value:
        return Path(value)
    base = _get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "portbinding"


def base_image() -> str:
    """The base image to build on, when set by hand; "" to choose one."""
    return _get(BASE_IMAGE_ENV)


def debian_mirror() -> str:
    return _get(DEBIAN_MIRROR_ENV) or DEFAULT_DEBIAN_MIRROR


def dockerd_log() -> Path:
    return Path(_get(DOCKERD_LOG_ENV) or "/var/log/portbinding-dockerd.log")


def apt_log() -> Path:
    """Where the course's apt-get runs log: beside dockerd's log."""
    return dockerd_log().with_name("portbinding-apt.log")


def podman_user() -> str:
    return _get(PODMAN_USER_ENV) or DEFAULT_PODMAN_USER


def podman_log() -> Path:
    return Path(_get(PODMAN_LOG_ENV) or "/var/log/portbinding-podman.log")


def docker_host() -> str:
    """DOCKER_HOST, as the docker CLI reads it; "" when unset."""
    return _get("DOCKER_HOST")


def workspace() -> Path | None:
    """The learner's workspace folder, when set by hand."""
    value = _get(WORKSPACE_ENV)
    return Path(value).expanduser() if value else None


def docker_context() -> str:
    """DOCKER_CONTEXT, as the docker CLI reads it; "" when unset."""
    return _get("DOCKER_CONTEXT")


def docker_config_dir() -> Path:
    """The docker CLI's configuration folder: DOCKER_CONFIG, else ~/.docker."""
    value = _get("DOCKER_CONFIG")
    return Path(value) if value else Path.home() / ".docker"


def runtime_dir() -> Path:
    """The user's runtime folder (rootless sockets live there): XDG_RUNTIME_DIR, else /run/user/UID."""
    value = _get("XDG_RUNTIME_DIR")
    return Path(value) if value else Path(f"/run/user/{os.getuid()}")
