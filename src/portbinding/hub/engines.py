"""A container engine for each student: their own rootless Podman service, never the host's socket.

Handing a student the host's Docker socket hands them root on the hub (so does the usual
privileged docker-in-docker sidecar). Here every student's server gets the rootless Podman
service that ``portbinding.podman`` sets up for a user -- the same set-up as for the course's
``pblpodman``, for any user: subordinate ids, XDG_RUNTIME_DIR, overlay storage, the service --
and DOCKER_HOST points at its socket in the student's 0700 runtime folder. Rootless, their
containers run as the student's own subordinate ids; another student's socket cannot even be
reached, and the host's socket is root:docker 0660 with students outside ``docker``.

**Images.** A shared read-only store (``additionalimagestores``) was tried first and does not
work rootless here: the store's files belong to the host's root, which a student's user
namespace shows as ``nobody``, so a container cannot create ``/etc/mtab`` (native overlay) or
write its own home (fuse-overlayfs) -- see grader/README.md "Running a class". So each student
loads only the images the lessons run (``lesson_references``), from one ``docker save``
archive the hub writes once (layers shared between the images, about 200 MB a student for
lesson 02's two images).

**Ports.** Rootless ports open on the hub's own network, shared by all students: the course
asks the kernel for a free host port whenever the one a lesson shows is taken
(``engine.preferred_port`` and the widgets' move to a free port), so two students running
``-p 8888:8888`` get two different host ports, each shown in their own widget.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from portbinding import podman
from portbinding.discovery import DEFAULT_SOCKET
from portbinding.errors import PodmanUnavailable
from portbinding.images import IMAGES, find_image
from portbinding.paths import course_material
from portbinding.probe import wait_until

REFERENCE = re.compile(r"portbinding/[a-z0-9-]+:[0-9a-z.]+")
LOAD_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class StudentEngine:
    """Where a student's engine answers, and as whom it runs."""

    user: str
    url: str
    kind: str = "rootless Podman"

    def describe(self) -> str:
        return f"your own {self.kind} (runs as {self.user}, socket {self.url.removeprefix('unix://')})"


def lesson_references(material: Path | None = None) -> list[str]:
    """The course images the lessons and the exercises' visible checks run, in catalogue order."""
    root = material or course_material()
    named: set[str] = set()
    for path in sorted([*root.glob("notebooks/*.ipynb"), *root.glob("exercises/*/*.ipynb")]):
        named.update(REFERENCE.findall(path.read_text(errors="replace")))
    found = {image.reference for ref in named if (image := find_image(ref)) is not None}
    return [image.reference for image in IMAGES if image.reference in found]


def image_archive(folder: Path, references: Sequence[str], *, docker_url: str = DEFAULT_SOCKET) -> Path:
    """One ``docker save`` of ``references`` in ``folder`` (root-only), rewritten when an image changes."""
    ids = []
    for reference in references:
        result = _run(["docker", "--host", docker_url, "image", "inspect", "--format", "{{.Id}}", reference])
        ids.append(result.strip())
    key = hashlib.sha256(json.dumps([list(references), ids]).encode()).hexdigest()[:16]
    archive = folder / f"images-{key}.tar"
    if archive.exists():
        return archive
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    for old in folder.glob("images-*.tar"):
        old.unlink()
    partial = archive.with_suffix(".partial")
    _run(["docker", "--host", docker_url, "save", "--output", str(partial), *references], timeout=600)
    partial.rename(archive)
    return archive


def ensure_engine(
    user: str,
    *,
    archive: Path,
    references: Sequence[str],
    started: Callable[[], None] = lambda: None,
    timeout: float = 60.0,
) -> StudentEngine:
    """The student's rootless Podman service, running, with ``references`` loaded. Needs root.

    ``started`` runs right after the service answers (the hub moves it into the student's
    cgroup there, before any container starts).
    """
    url = podman.ensure_podman(user=user, images=False, timeout=timeout)
    started()
    found = podman.account(user)
    if found is None:
        raise PodmanUnavailable(f"The student {user!r} has no Unix account.")
    missing = [ref for ref in references if not _has_image(found, ref)]
    if missing:
        with archive.open("rb") as stream:  # root opens it: students cannot read the hub's folder
            result = subprocess.run(
                found.command(["podman", "load"]),
                stdin=stream,
                capture_output=True,
                text=True,
                cwd=found.home,
                timeout=LOAD_TIMEOUT_S,
                check=False,
            )
        if result.returncode != 0:
            raise PodmanUnavailable(
                f"Loading the course images into {user}'s Podman failed: {result.stderr.strip()[-300:]}",
                hint=f"check the free disk space under {found.home}, then start the server again",
            )
    return StudentEngine(user, url)


def stop_engine(user: str, *, timeout: float = 30.0) -> None:
    """Stop the student's Podman service and every container it runs (the server stopped)."""
    found = podman.account(user)
    if found is None:
        return
    if podman.ping(found.url):
        subprocess.run(
            found.command(["podman", "rm", "--all", "--force", "--time", "2"]),
            capture_output=True,
            cwd=found.home,
            timeout=120,
            check=False,
        )
    with contextlib.suppress(OSError, ValueError):
        group = int(found.pid_file.read_text().strip())
        os.killpg(group, 15)
        wait_until(lambda: not podman.ping(found.url, timeout=1.0), timeout=timeout, max_interval=0.1)
        found.pid_file.unlink(missing_ok=True)


def _has_image(found: podman.PodmanAccount, reference: str) -> bool:
    result = subprocess.run(
        found.command(["podman", "image", "exists", reference]),
        capture_output=True,
        cwd=found.home,
        timeout=60,
        check=False,
    )
    return result.returncode == 0


def _run(argv: list[str], *, timeout: float = 120) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise PodmanUnavailable(
            f"`{' '.join(argv[:5])} ...` failed: {result.stderr.strip()[-300:]}",
            hint="build the course images first (`portbinding images build`)",
        )
    return result.stdout
