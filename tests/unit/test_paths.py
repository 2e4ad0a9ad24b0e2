"""Where the course finds its own folders, and what it says when they are not there."""

from __future__ import annotations

from pathlib import Path

import pytest

from portbinding import paths
from portbinding.errors import CourseFilesMissing
from portbinding.grading.course import Course, CourseError, lay_out_course
from tests.support.checkout import REPO


def test_a_checkout_finds_its_own_folders() -> None:
    """Imported from src/ (an editable install), the folders are the repository's."""
    assert paths.checkout_root() == REPO, "the editable install should know its checkout"
    assert paths.images_dir() == REPO / "images", "the image folders should be the checkout's"
    assert paths.course_material() == REPO, "the course material should be the checkout's"


def test_the_images_folder_can_be_chosen_and_a_wrong_choice_is_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTBINDING_IMAGES_DIR", str(tmp_path))
    assert paths.images_dir() == tmp_path, "PORTBINDING_IMAGES_DIR should win, read when asked"
    monkeypatch.setenv("PORTBINDING_IMAGES_DIR", str(tmp_path / "nope"))
    with pytest.raises(CourseFilesMissing, match="is not a folder") as raised:
        paths.images_dir()
    assert "unset PORTBINDING_IMAGES_DIR" in raised.value.hint, raised.value.hint


@pytest.fixture
def installed_without_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The package as if installed into a site-packages that lacks its data (a broken install)."""
    package = tmp_path / "site-packages" / "portbinding"
    package.mkdir(parents=True)
    monkeypatch.setattr(paths, "PACKAGE_DIR", package)
    monkeypatch.setattr(paths, "DATA_DIR", package / "_data")
    monkeypatch.delenv("PORTBINDING_IMAGES_DIR", raising=False)
    return package


def test_missing_shipped_folders_are_a_clear_error_with_the_next_step(installed_without_data: Path) -> None:
    """No site-packages/../images guess: the error names what is missing and how to install it."""
    assert paths.checkout_root() is None, "a site-packages folder is not a checkout"
    for find in (paths.images_dir, paths.course_material):
        with pytest.raises(CourseFilesMissing, match="is not installed") as raised:
            find()
        assert "pip install ." in raised.value.hint, raised.value.hint


def test_outside_a_course_an_installed_tool_says_how_to_lay_one_out(
    installed_without_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CourseError, match="not an nbgrader course") as raised:
        Course.find()
    assert "portbinding course init DIR" in raised.value.hint, raised.value.hint


def test_course_init_lays_out_the_course_and_never_overwrites_one(tmp_path: Path) -> None:
    written = lay_out_course(tmp_path)
    course = Course.find(tmp_path / "grader")
    assert course.assignments() == Course(REPO / "grader").assignments(), "every assignment is laid out"
    assert course.exercises == tmp_path / "exercises" and course.exercises.is_dir(), written
    assert sorted(p.name for p in (tmp_path / "notebooks").glob("*.ipynb")) == sorted(
        p.name for p in (REPO / "notebooks").glob("*.ipynb")
    ), "every lesson is laid out"
    with pytest.raises(CourseError, match="already holds"):
        lay_out_course(tmp_path)
