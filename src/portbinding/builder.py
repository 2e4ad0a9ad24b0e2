"""Building the exercise images (listed in :mod:`images`), offline when it has to be.

Every exercise image takes ``ARG BASE_IMAGE`` (an official slim Python image by default). When
that base cannot be pulled -- no registry is reachable in some classrooms and on our CI -- a
local base is built from Debian packages (debootstrap + import) and cached as an image. pip
inside the builds never touches the network: the wheels are downloaded on the host (which
trusts this network's TLS proxy) and sent in the build context, so nothing secret is baked in.

A build is tagged only after it succeeds, so a failed or interrupted build never leaves a
half-built image tagged as if it were good. An image whose context, base and build arguments
are unchanged is not rebuilt (its ``portbinding.image.context`` label records them).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions
import urllib3.exceptions

from portbinding import images, settings
from portbinding.dockerjson import image_inspect
from portbinding.errors import EngineUnavailable, ImageBuildError, ImageMissing
from portbinding.host import apt_install, log_tail
from portbinding.images import (
    CONTEXT_LABEL,
    DEFAULT_BASE,
    LOCAL_BASE,
    SOURCE_LABEL,
    ImageDef,
    select,
    split_image_ref,
)
from portbinding.paths import cache_dir
from portbinding.process import launch as process_engine

LOGGER = logging.getLogger(__name__)

DEBIAN_SUITE = "bookworm"
# Debian's Python in the local base; recorded as PYTHON_VERSION like the official images do,
# so the wheelhouse can be downloaded for the right interpreter without starting a container.
LOCAL_BASE_PYTHON = "3.11"
_STEP = re.compile(r"Step (\d+)/(\d+) :")


@dataclass(frozen=True)
class BuildEvent:
    """Progress of one image build, for a progress bar: step ``step`` of ``steps``."""

    image: str
    step: int
    steps: int
    message: str
    done: bool = False
    cached: bool = False


ProgressCallback = Callable[[BuildEvent], None]


def _ignore(_: BuildEvent) -> None:
    return None


# ---------------------------------------------------------------------------------- the base


def resolve_base(client: docker.DockerClient, *, progress: ProgressCallback = _ignore) -> str:
    """The base image to build on: the official one if present or pullable, else the local one.

    PORTBINDING_BASE_IMAGE overrides the choice (it must already be on the engine).
    """
    override = settings.base_image()
    if override:
        if not has_image(client, override):
            raise ImageMissing(
                f"PORTBINDING_BASE_IMAGE={override} is not on the engine.",
                hint=f"pull or build it first, or unset PORTBINDING_BASE_IMAGE to use {DEFAULT_BASE}",
            )
        return override
    if has_image(client, DEFAULT_BASE):
        return DEFAULT_BASE
    if has_image(client, LOCAL_BASE):
        return LOCAL_BASE  # built here before because the pull failed: don't try the registry again
    progress(BuildEvent("base", 0, 1, f"pulling {DEFAULT_BASE}"))
    try:
        client.images.pull(DEFAULT_BASE)
        return DEFAULT_BASE
    except docker.errors.APIError as exc:
        LOGGER.info("cannot pull %s (%s); using a local Debian base", DEFAULT_BASE, exc)
    build_local_base(client, progress=progress)
    return LOCAL_BASE


def build_local_base(client: docker.DockerClient, *, progress: ProgressCallback = _ignore) -> None:
    """Build ``LOCAL_BASE`` from Debian packages: debootstrap a minimal root, trim it, import it."""
    if os.geteuid() != 0:
        raise ImageBuildError(
            f"{DEFAULT_BASE} cannot be pulled, and building a local base from Debian packages needs root.",
            hint="run `sudo portbinding images build` once, or load a base image "
            "(`docker load`) and set PORTBINDING_BASE_IMAGE to it",
        )
    debootstrap = shutil.which("debootstrap") or _install_debootstrap()
    mirror = settings.debian_mirror()
    progress(BuildEvent("base", 0, 3, "debootstrap: downloading Debian packages (about a minute)"))
    with tempfile.TemporaryDirectory(prefix="portbinding-base-") as tmp:
        root = Path(tmp) / "root"
        log_path = Path(tmp) / "debootstrap.log"
        with log_path.open("w") as log:
            result = subprocess.run(
                [
                    debootstrap,
                    "--variant=minbase",
                    "--include=python3,python3-venv",
                    DEBIAN_SUITE,
                    str(root),
                    mirror,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=900,
                check=False,
            )
        if result.returncode != 0:
            tail = log_tail(log_path).replace("\n", "\n  ")
            raise ImageBuildError(
                f"debootstrap could not build the local base image:\n  {tail}",
                hint=f"check that {mirror} is reachable (set PORTBINDING_DEBIAN_MIRROR to another mirror)",
            )
        progress(BuildEvent("base", 1, 3, "trimming the root filesystem"))
        _trim_root(root)
        progress(BuildEvent("base", 2, 3, f"importing {LOCAL_BASE}"))
        tar_path = Path(tmp) / "root.tar"
        subprocess.run(["tar", "-C", str(root), "-cf", str(tar_path), "."], check=True, timeout=600)
        repository, tag = split_image_ref(LOCAL_BASE)
        changes = [
            "ENV LANG=C.UTF-8",
            f"ENV PYTHON_VERSION={LOCAL_BASE_PYTHON}",
            'CMD ["python3"]',
            "LABEL portbinding.image=python-base",
        ]
        try:
            client.api.import_image(src=str(tar_path), repository=repository, tag=tag, changes=changes)
        except (docker.errors.APIError, requests.exceptions.ConnectionError) as exc:
            raise _build_error("the local base", exc) from exc
    progress(BuildEvent("base", 3, 3, f"built {LOCAL_BASE}", done=True))


def _install_debootstrap() -> str:
    if shutil.which("apt-get") is None:
        raise ImageBuildError(
            "debootstrap is not installed and this is not a Debian-like system.",
            hint="install debootstrap, or provide a base image and set PORTBINDING_BASE_IMAGE",
        )
    apt_install("debootstrap")
    return shutil.which("debootstrap") or "/usr/sbin/debootstrap"


def _trim_root(root: Path) -> None:
    """Remove what a container never needs: package caches, indexes, docs, translations."""
    for relative in (
        "var/cache/apt/archives",
        "var/lib/apt/lists",
        "usr/share/doc",
        "usr/share/man",
        "usr/share/locale",
        "usr/share/info",
    ):
        target = root / relative
        if target.is_dir():
            for child in target.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()


# ----------------------------------------------------------------------------- the wheelhouse


def wheelhouse_for(requirements: Path, python_version: str, *, cache: Path | None = None) -> Path:
    """Wheels for ``requirements`` and ``python_version``, downloaded once on the host and cached."""
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
    root = cache or cache_dir()
    target = root / "wheelhouse" / f"py{python_version}-{digest}"
    if (target / ".complete").exists():
        return target
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    platforms = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64", "any")
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
    command += ["--dest", str(partial), "--only-binary=:all:", "--implementation", "cp"]
    command += ["--python-version", python_version, "-r", str(requirements)]
    command += [word for platform in platforms for word in ("--platform", platform)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    if result.returncode != 0:
        raise ImageBuildError(
            f"Could not download the Python packages in {requirements.name}:\n{result.stderr.strip()[-800:]}",
            hint="check that PyPI (or your pip index) is reachable from this machine",
        )
    (partial / ".complete").touch()
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


def wheels_for(image: ImageDef, python_version: str) -> Path | None:
    """The wheelhouse an image's build context carries (None: the image installs nothing)."""
    requirements = image.folder / "requirements.txt"
    return wheelhouse_for(requirements, python_version) if requirements.exists() else None


def base_python_version(client: docker.DockerClient, base: str) -> str:
    """``major.minor`` of the base image's Python, from its PYTHON_VERSION environment variable."""
    env = (image_inspect(client.images.get(base).attrs).get("Config") or {}).get("Env") or []
    for entry in env:
        if entry.startswith("PYTHON_VERSION="):
            return ".".join(entry.split("=", 1)[1].split(".")[:2])
    return LOCAL_BASE_PYTHON


# ------------------------------------------------------------------------------- the builds


def build_context(image: ImageDef, *, wheels: Path | None) -> tuple[bytes, str]:
    """The build context as a tar archive, and a digest of everything that shapes the image."""
    digest = hashlib.sha256()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for relative, path in _source_files(image):
            _add_bytes(archive, relative, path.read_bytes(), digest, executable=os.access(path, os.X_OK))
        if (image.folder / "wheels").is_dir():
            _add_bytes(archive, "wheels/README", b"wheelhouse\n", digest)
            for wheel in sorted(wheels.glob("*.whl") if wheels else []):
                _add_bytes(archive, f"wheels/{wheel.name}", wheel.read_bytes(), digest)
    return buffer.getvalue(), digest.hexdigest()


def source_digest(image: ImageDef) -> str:
    """A digest of what this copy of the course builds ``image`` from: its folder's files and its
    build arguments (not the base image or the wheels, which need the engine and the network)."""
    digest = hashlib.sha256(json.dumps(sorted(image.buildargs)).encode())
    for relative, path in _source_files(image):
        digest.update(relative.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:32]


def _source_files(image: ImageDef) -> list[tuple[str, Path]]:
    """The image folder's files that go into the build, by relative path, in a fixed order."""
    found = []
    for path in sorted(image.folder.rglob("*")):
        relative = path.relative_to(image.folder)
        # READMEs are for people: leaving them out keeps a doc edit from forcing a rebuild.
        if path.is_dir() or relative.parts[0] == "wheels" or "__pycache__" in relative.parts:
            continue
        if relative.name != "README.md":
            found.append((str(relative), path))
    return found


def _add_bytes(
    archive: tarfile.TarFile, name: str, data: bytes, digest: Any, *, executable: bool = False
) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o755 if executable else 0o644
    info.mtime = 0  # a fixed time keeps the context (and the build cache) reproducible
    archive.addfile(info, io.BytesIO(data))
    digest.update(name.encode() + b"\0" + oct(info.mode).encode() + hashlib.sha256(data).digest())


@dataclass(frozen=True)
class BuiltImage:
    """The outcome of building one image definition."""

    image: ImageDef
    image_id: str
    cached: bool


def build_images(
    client: docker.DockerClient,
    names: Sequence[str] | None = None,
    *,
    force: bool = False,
    progress: ProgressCallback = _ignore,
) -> list[BuiltImage]:
    """Build (or confirm up to date) the named exercise images -- all of them by default."""
    selected = select(names)
    base = resolve_base(client, progress=progress)
    base_id = client.images.get(base).id
    python_version = base_python_version(client, base)
    results = []
    for image in selected:
        wheels = wheels_for(image, python_version)
        results.append(_build_one(client, image, base, base_id, wheels, force=force, progress=progress))
    return results


def _build_one(
    client: docker.DockerClient,
    image: ImageDef,
    base: str,
    base_id: str,
    wheels: Path | None,
    *,
    force: bool,
    progress: ProgressCallback,
) -> BuiltImage:
    context, digest = build_context(image, wheels=wheels)
    buildargs = {"BASE_IMAGE": base, **dict(image.buildargs)}
    if wheels is not None:
        buildargs["PIP_NO_INDEX"] = "1"
    fingerprint = hashlib.sha256(
        json.dumps([digest, base_id, sorted(buildargs.items())]).encode()
    ).hexdigest()[:32]
    label = image.reference
    if not force and _fingerprint_of(client, image) == fingerprint:
        progress(BuildEvent(label, 1, 1, "up to date", done=True, cached=True))
        return BuiltImage(image, client.images.get(image.reference).id, cached=True)
    image_id = ""
    step, steps = 0, 1
    recent: list[str] = []  # the last lines of output: the reason a step failed is usually there
    try:
        # No tag here: the image is tagged only once the build has succeeded.
        stream: Iterator[dict[str, Any]] = client.api.build(
            fileobj=io.BytesIO(context),
            custom_context=True,
            buildargs=buildargs,
            labels={CONTEXT_LABEL: fingerprint, SOURCE_LABEL: source_digest(image)},
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
        )
        for chunk in stream:
            if "error" in chunk:
                detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                raise _build_error(label, RuntimeError(str(detail)), output=recent)
            text = str(chunk.get("stream", "")).strip()
            if text:
                recent = [*recent[-7:], text]
            match = _STEP.match(text)
            if match:
                step, steps = int(match.group(1)), int(match.group(2))
                progress(BuildEvent(label, step, steps, text))
            aux = chunk.get("aux")
            if isinstance(aux, dict) and "ID" in aux:
                image_id = str(aux["ID"])
    except (
        docker.errors.APIError,
        requests.exceptions.RequestException,
        urllib3.exceptions.HTTPError,
    ) as exc:
        raise _build_error(label, exc, output=recent) from exc
    if not image_id:
        raise ImageBuildError(
            f"The build of {label} ended without producing an image.",
            hint="run `portbinding images build` again; the engine log may say more",
        )
    for reference in image.tags:
        repository, tag = split_image_ref(reference)
        client.api.tag(image_id, repository, tag)
    progress(BuildEvent(label, steps, steps, "built", done=True))
    return BuiltImage(image, image_id, cached=False)


def _fingerprint_of(client: docker.DockerClient, image: ImageDef) -> str | None:
    """The context label of every tag of ``image``, when they all agree (else None: rebuild).

    An image without the source label was built before the course recorded it: rebuilt once
    (from the engine's layer cache), so that an outdated image can be told from then on.
    """
    found = set()
    for tag in image.tags:
        try:
            labels = client.images.get(tag).labels or {}
        except docker.errors.ImageNotFound:
            return None
        found.add(labels.get(CONTEXT_LABEL) if SOURCE_LABEL in labels else None)
    return found.pop() if len(found) == 1 else None


def _build_error(label: str, exc: BaseException, *, output: Sequence[str] = ()) -> ImageBuildError:
    """Turn an engine failure during a build into a message that names the likely cause."""
    text = str(exc)
    lowered = (text + "\n" + "\n".join(output)).lower()
    if "no space left on device" in lowered:
        return ImageBuildError(
            f"The build of {label} stopped: the disk is full (no space left on device).",
            hint="free some space (`docker system prune` removes stopped containers and unused "
            "images), then run `portbinding images build` again",
        )
    stopped = (requests.exceptions.ConnectionError, urllib3.exceptions.ProtocolError)
    if isinstance(exc, stopped) or "connection aborted" in lowered or "connection broken" in lowered:
        return ImageBuildError(
            f"The container engine stopped answering while building {label}.",
            hint="start the engine again (`portbinding doctor` does it on Debian as root), then "
            "run `portbinding images build` again; nothing half-built was tagged",
        )
    tail = "".join(f"\n  | {line}" for line in output[-6:])
    return ImageBuildError(
        f"The build of {label} failed: {text.strip()[-800:]}{tail}",
        hint="fix the error above, then run `portbinding images build` again",
    )


# ---------------------------------------------------------------------------------- listing


@dataclass(frozen=True)
class ImageStatus:
    """Whether a course image is on the engine, built from this copy of the course, and its size."""

    reference: str
    present: bool
    size_bytes: int = 0
    image_id: str = ""
    # Built from other files than this copy of the course has (the course was updated since):
    # the lessons would run the old image until `portbinding images build` builds it again.
    outdated: bool = False

    @property
    def needs_build(self) -> bool:
        """Missing, or built from an older copy of the course: `portbinding images build` builds it."""
        return not self.present or self.outdated

    @property
    def word(self) -> str:
        """``present``, ``outdated`` or ``missing``, as the command line and the doctor say it."""
        return "outdated" if self.outdated else "present" if self.present else "missing"


def runnable_images(client: docker.DockerClient) -> list[ImageDef]:
    """The course images this engine can run: all of them, except on the course's process engine,
    which leaves out the ones that are not Python servers (nginx, Redis: lesson 07)."""
    try:
        components = " ".join(
            str(c.get("Name", "")) for c in (client.version() or {}).get("Components") or []
        )
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        components = ""
    if process_engine.COMPONENT in components:  # as discovery tells the process engine apart
        return [image for image in images.IMAGES if not image.not_on_process_engine]
    return list(images.IMAGES)


def list_images(client: docker.DockerClient) -> list[ImageStatus]:
    """The status of every course image reference on ``client`` (that it can run)."""
    return [image_status(client, image) for image in runnable_images(client)]


def image_status(client: docker.DockerClient, image: ImageDef) -> ImageStatus:
    """Whether ``image`` is on the engine, and whether it was built from this copy of the course."""
    try:
        found = client.images.get(image.reference)
    except docker.errors.ImageNotFound:
        return ImageStatus(image.reference, False)
    built_from = (found.labels or {}).get(SOURCE_LABEL)
    # An image without the label (Podman's copy of an older build, the process engine's folders)
    # is not called outdated: only a label that disagrees is evidence.
    outdated = built_from is not None and built_from != source_digest(image)
    size = image_inspect(found.attrs).get("Size", 0)
    return ImageStatus(image.reference, True, size, found.short_id, outdated)


def missing_images(client: docker.DockerClient, references: Iterable[str] | None = None) -> list[str]:
    """The course image references not yet on the engine."""
    wanted = list(references) if references is not None else [i.reference for i in runnable_images(client)]
    return [reference for reference in wanted if not has_image(client, reference)]


def has_image(client: docker.DockerClient, reference: str) -> bool:
    """Whether ``reference`` is on the engine; EngineUnavailable when the engine does not answer."""
    try:
        client.images.get(reference)
        return True
    except docker.errors.ImageNotFound:
        return False
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise EngineUnavailable(
            f"The container engine did not answer: {exc}", hint="run `portbinding doctor`"
        ) from exc
