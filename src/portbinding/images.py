"""The course's exercise images: what they are called, where their folders are, which tags they get.

This is the catalogue only -- no engine is asked, and the Docker SDK is not imported, so the run
policy (:mod:`command`) and the process engine can read it cheaply. Building the images is
:mod:`builder`'s job. Image references are split here once, as Docker splits them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from portbinding.errors import UnknownImage
from portbinding.paths import images_dir

DEFAULT_BASE = "python:3.12-slim"
LOCAL_BASE = "portbinding/python-base:bookworm"
# The label recording what an image was built from (its build context, base and arguments).
CONTEXT_LABEL = "portbinding.image.context"
# The label recording which files of the course it was built from (to tell an outdated image).
SOURCE_LABEL = "portbinding.image.source"


def split_image_ref(reference: str) -> tuple[str, str | None]:
    """``(repository, tag)`` of an image reference; the tag is None when there is none.

    A colon after the last slash starts a tag; one before it is a registry's ``host:port``
    (``localhost:5000/app`` has no tag), as Docker reads a reference.
    """
    slash, colon = reference.rfind("/"), reference.rfind(":")
    if colon > slash:
        return reference[:colon], reference[colon + 1 :]
    return reference, None


def tagged(reference: str) -> str:
    """``reference`` with the tag Docker assumes when there is none: ``:latest``."""
    repository, tag = split_image_ref(reference)
    return f"{repository}:{tag or 'latest'}"


def short_name(reference: str) -> str:
    """The last part of the repository, as ``portbinding images build NAME`` takes it."""
    return split_image_ref(reference)[0].rsplit("/", 1)[-1]


@dataclass(frozen=True)
class ImageDef:
    """One exercise image: the folder it is built from and the tags it gets."""

    name: str
    tags: tuple[str, ...]
    buildargs: tuple[tuple[str, str], ...] = ()
    # Why the process engine (Binder) cannot run it -- it runs the course's Python servers only;
    # empty when it can.
    not_on_process_engine: str = ""

    @property
    def folder(self) -> Path:
        return images_dir() / self.name

    @property
    def reference(self) -> str:
        """The canonical reference the course runs, e.g. ``portbinding/notebook:1.0``."""
        return self.tags[0]


IMAGES: tuple[ImageDef, ...] = (
    ImageDef(
        "notebook-loopback", ("portbinding/notebook-loopback:1.0", "portbinding/notebook-loopback:latest")
    ),
    ImageDef("notebook", ("portbinding/notebook:1.0", "portbinding/notebook:latest")),
    ImageDef(
        "scoring-api",
        ("portbinding/scoring-api:1.0", "portbinding/scoring-api:latest", "scoring-api:1.0"),
        (("API_VERSION", "1.0"),),
    ),
    ImageDef("scoring-api", ("portbinding/scoring-api:2.0", "scoring-api:2.0"), (("API_VERSION", "2.0"),)),
    ImageDef(
        "crash-before-listen",
        ("portbinding/crash-before-listen:1.0", "portbinding/crash-before-listen:latest"),
    ),
    ImageDef("slow-start", ("portbinding/slow-start:1.0", "portbinding/slow-start:latest")),
    ImageDef(
        "proxy",
        ("portbinding/proxy:1.0", "portbinding/proxy:latest"),
        not_on_process_engine="it runs nginx (from Debian's packages), and the process engine runs the "
        "course's Python servers only",
    ),
    ImageDef(
        "redis",
        ("portbinding/redis:1.0", "portbinding/redis:latest"),
        not_on_process_engine="it runs Redis (from Debian's packages), and the process engine runs the "
        "course's Python servers only",
    ),
)


def image_names() -> list[str]:
    """The exercise image names, in build order, without duplicates."""
    return list(dict.fromkeys(image.name for image in IMAGES))


def course_repositories() -> tuple[str, ...]:
    """Every repository name a course image is tagged with (what the run policy allows)."""
    repos = (split_image_ref(tag)[0] for image in IMAGES for tag in image.tags)
    return tuple(dict.fromkeys(repos))


def select(names: Sequence[str] | None) -> list[ImageDef]:
    """The image definitions for ``names`` (all when empty); unknown names are a clear error."""
    if not names:
        return list(IMAGES)
    known = image_names()
    unknown = [name for name in names if name not in known]
    if unknown:
        raise UnknownImage(
            f"There is no exercise image called {', '.join(repr(n) for n in unknown)}.",
            hint=f"choose from: {', '.join(known)} (or build them all with `portbinding images build`)",
        )
    return [image for image in IMAGES if image.name in names]


def find_image(reference: str) -> ImageDef | None:
    """The course image tagged ``reference`` (no tag means ``:latest``), if there is one."""
    wanted = tagged(reference)
    return next((image for image in IMAGES if wanted in image.tags), None)
