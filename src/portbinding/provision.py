"""Installing and starting a container engine where none answers (Debian, as root).

``portbinding doctor --install`` (and so ``make lab`` / ``make test``) comes here: when
:mod:`discovery` finds no engine, Debian's ``docker.io`` is installed if missing and ``dockerd``
is started in the background, logging to ``settings.dockerd_log()``. Everywhere else the error
from discovery stands, with its next step.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable

import docker

from portbinding import settings
from portbinding.discovery import DEFAULT_SOCKET, EngineInfo, answers, find_engine
from portbinding.errors import EngineUnavailable
from portbinding.host import apt_install, debian_like, start_service


def ensure_engine(
    *, install: bool, timeout: float = 90.0, say: Callable[[str], None] = print
) -> tuple[docker.DockerClient, EngineInfo]:
    """Find an engine; with ``install``, on Debian as root, install docker.io and start dockerd."""
    try:
        return find_engine()
    except EngineUnavailable as missing:
        if not install or os.geteuid() != 0 or not debian_like() or "permission denied" in missing.message:
            raise
        if shutil.which("dockerd") is None:
            say("No container engine: installing Debian's docker.io (about a minute)...")
            apt_install("docker.io")
            if answers(DEFAULT_SOCKET):  # a service manager may have started it already
                return find_engine()
        say(f"Starting dockerd (log: {settings.dockerd_log()})...")
        start_dockerd(timeout=timeout)
        return find_engine()


def start_dockerd(*, timeout: float = 90.0) -> None:
    """Start dockerd in the background (it outlives us) and wait until its socket answers."""
    start_service(
        ["dockerd"],
        name="dockerd",
        log=settings.dockerd_log(),
        answers=lambda: answers(DEFAULT_SOCKET),
        timeout=timeout,
        exit_hint=f"read {settings.dockerd_log()}; another dockerd may already be running "
        "(remove a stale /var/run/docker.pid)",
    )
