"""Where the course's own files are: the image folders, the course material, the cache.

An installed package (``pip install .``) carries them inside itself, under ``portbinding/_data``
(pyproject.toml maps them there); an editable install or a checkout on ``sys.path`` finds them
in the repository, next to ``src/``. Either way, what cannot be found is a clear error that
says how to get it, never a path into site-packages that does not exist.
"""

from __future__ import annotations

from pathlib import Path

from portbinding import settings
from portbinding.errors import CourseFilesMissing

PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR = PACKAGE_DIR / "_data"  # only in a built wheel
# The top folders of the course material, as they stand in the repository.
COURSE_PARTS = ("grader", "exercises", "notebooks")


def checkout_root() -> Path | None:
    """The repository this package is imported from (an editable install), or None when installed."""
    root = PACKAGE_DIR.parents[1]
    return root if (root / "pyproject.toml").is_file() and (root / "images").is_dir() else None


def images_dir() -> Path:
    """The exercise image folders: PORTBINDING_IMAGES_DIR, else the package's own, else the checkout's."""
    chosen = settings.images_dir()
    if chosen is not None:
        if not chosen.is_dir():
            raise CourseFilesMissing(
                f"{settings.IMAGES_DIR_ENV}={chosen} is not a folder.",
                hint=f"point it at a folder holding the image folders (notebook/, scoring-api/, ...), "
                f"or unset {settings.IMAGES_DIR_ENV} to use the ones shipped with the course",
            )
        return chosen
    return _shipped_images()


def course_material() -> Path:
    """The folder holding the course material (grader/, exercises/, notebooks/), as shipped."""
    packaged = DATA_DIR / "course"
    root = packaged if packaged.is_dir() else _checkout_or_raise("course material")
    missing = [part for part in COURSE_PARTS if not (root / part).is_dir()]
    if missing:
        raise CourseFilesMissing(
            f"The course material at {root} lacks {', '.join(f'{part}/' for part in missing)}.",
            hint="restore it from the repository (`git checkout -- .`), or install the course again",
        )
    return root


def cache_dir() -> Path:
    """Where downloads and the process engine's state are kept (see ``settings.cache_dir``)."""
    return settings.cache_dir()


def _shipped_images() -> Path:
    """The image folders from the wheel's data, else from the checkout."""
    packaged = DATA_DIR / "images"
    if packaged.is_dir():
        return packaged
    return _checkout_or_raise("image folders") / "images"


def _checkout_or_raise(what: str) -> Path:
    root = checkout_root()
    if root is None:
        raise CourseFilesMissing(
            f"The course's {what} is not installed: neither {DATA_DIR} nor a checkout around "
            f"{PACKAGE_DIR} holds it.",
            hint="install the course from its repository (`pip install .` there, or `make setup` "
            "for an editable install), which ships these folders with the package",
        )
    return root
