"""The nbgrader course on disk (grader/), and the student versions released into exercises/.

The course uses nbgrader's default folder names below its root; only the source folder is
named in grader/nbgrader_config.py. In a checkout the course is the repository's grader/; an
installed package ships the same material, and ``lay_out_course`` copies it into a folder of the
instructor's choosing (``portbinding course init DIR``). ``release_student_versions`` runs the real
``nbgrader generate_assignment`` in a scratch copy of the course, so exercises/ is exactly
what nbgrader releases -- a test compares the two.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from portbinding.errors import PortBindingError
from portbinding.paths import checkout_root, course_material

LOGGER = logging.getLogger(__name__)

COMMAND_TIMEOUT_S = 300.0
# What ``course init`` lays out: the instructor's course, the student versions, the lessons.
COURSE_FILES = (
    "grader/.gitignore",
    "grader/nbgrader_config.py",
    "grader/README.md",
    "grader/source",
    "exercises",
    "notebooks",
)


class CourseError(PortBindingError):
    """The course folder is not set up for what was asked."""

    bad_input = True


@dataclass(frozen=True)
class Course:
    """An nbgrader course folder: nbgrader_config.py, source/, release/, submitted/, ..."""

    root: Path

    @classmethod
    def find(cls, path: Path | None = None) -> Course:
        """``path``; else the current folder if it is a course; else the checkout's grader/, if any."""
        checkout = checkout_root()
        candidates = [path] if path else [Path.cwd(), *([checkout / "grader"] if checkout else [])]
        for candidate in candidates:
            if (candidate / "nbgrader_config.py").is_file():
                return cls(candidate.resolve())
        where = path or Path.cwd()
        raise CourseError(
            f"{where} is not an nbgrader course: it has no nbgrader_config.py.",
            hint="run from the course's grader/ folder or pass --course PATH; to lay out a course "
            "first, `portbinding course init DIR` (then grade from DIR/grader)",
        )

    @property
    def exercises(self) -> Path:
        """Where the student versions are released: exercises/ beside the course folder."""
        return self.root.parent / "exercises"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.root / 'gradebook.db'}"

    def source(self, assignment: str) -> Path:
        return self.root / "source" / assignment

    def release(self, assignment: str) -> Path:
        return self.root / "release" / assignment

    def submitted(self, student: str, assignment: str) -> Path:
        return self.root / "submitted" / student / assignment

    def autograded(self, student: str, assignment: str) -> Path:
        return self.root / "autograded" / student / assignment

    def records(self, assignment: str) -> Path:
        """Where ``portbinding grade`` keeps its per-student records (for ``portbinding report``)."""
        return self.root / "reports" / assignment

    def assignments(self) -> list[str]:
        source = self.root / "source"
        return sorted(p.name for p in source.iterdir() if p.is_dir()) if source.is_dir() else []

    def students(self, assignment: str) -> list[str]:
        """Every student with a submission of ``assignment`` in submitted/."""
        folder = self.root / "submitted"
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if (p / assignment).is_dir() and not p.is_symlink())


def nbgrader_command() -> list[str]:
    """nbgrader from this interpreter's environment (which must be on PATH too: ``nbgrader_env``)."""
    local = Path(sys.executable).parent / "nbgrader"
    return [str(local)] if local.exists() else ["nbgrader"]


def nbgrader_env(**extra: str) -> dict[str, str]:
    """The environment for nbgrader: it runs ``alembic`` from PATH, so this venv's bin/ comes first."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def run_nbgrader(args: list[str], *, cwd: Path, timeout: float = COMMAND_TIMEOUT_S) -> None:
    """Run one nbgrader command; CourseError with the end of its log if it fails."""
    LOGGER.debug("nbgrader %s (in %s)", " ".join(args), cwd)
    result = subprocess.run(
        [*nbgrader_command(), *args],
        cwd=cwd,
        env=nbgrader_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        tail = "\n  ".join((result.stdout + result.stderr).strip().splitlines()[-12:])
        raise CourseError(
            f"`nbgrader {' '.join(args)}` failed (exit {result.returncode}):\n  {tail}",
            hint=f"run it yourself in {cwd} to see the whole log",
        )


def release_student_versions(
    course: Course, assignments: list[str] | None = None
) -> dict[str, dict[str, bytes]]:
    """What ``nbgrader generate_assignment`` releases for each assignment: {assignment: {file: bytes}}."""
    chosen = assignments or course.assignments()
    released: dict[str, dict[str, bytes]] = {}
    from portbinding.grading.rootconfig import read_course_settings, write_grading_config

    with tempfile.TemporaryDirectory(prefix="portbinding-release-") as scratch:
        root = Path(scratch)
        # The package's config, the course's settings read as data: `portbinding exercises` may
        # run as root, and the course's nbgrader_config.py is the instructor's Python.
        write_grading_config(root, read_course_settings(course.root))
        for assignment in chosen:
            shutil.copytree(course.source(assignment), root / "source" / assignment)
            run_nbgrader(
                ["generate_assignment", assignment, "--force", f"--CourseDirectory.root={root}"], cwd=root
            )
            folder = root / "release" / assignment
            released[assignment] = {
                str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
            }
    return released


def exercise_differences(course: Course, exercises: Path) -> list[str]:
    """How exercises/ differs from what nbgrader releases (empty when in sync)."""
    problems = []
    for assignment, files in release_student_versions(course).items():
        for name, data in files.items():
            target = exercises / assignment / name
            if not target.is_file():
                problems.append(f"{target} is missing")
            elif target.read_bytes() != data:
                problems.append(f"{target} differs from the released version")
    return problems


def write_exercises(course: Course, exercises: Path) -> list[Path]:
    """Replace the released notebooks in exercises/ with nbgrader's current student versions."""
    written = []
    for assignment, files in release_student_versions(course).items():
        for name, data in files.items():
            target = exercises / assignment / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            written.append(target)
    return written


def lay_out_course(target: Path) -> list[Path]:
    """Copy the shipped course (grader/, exercises/, notebooks/) into ``target``; the paths written.

    ``target`` may exist but must not hold any of those folders yet: an instructor's gradebook or
    edited sources are never overwritten.
    """
    source = course_material()
    clashes = [target / name for name in ("grader", "exercises", "notebooks") if (target / name).exists()]
    if clashes:
        raise CourseError(
            f"{target} already holds {', '.join(str(p) for p in clashes)}; nothing was copied.",
            hint="choose an empty (or new) folder, or move those folders away first",
        )
    written = []
    for relative in COURSE_FILES:
        origin, destination = source / relative, target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_dir():
            shutil.copytree(
                origin, destination, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints")
            )
        else:
            shutil.copy2(origin, destination)
        written.append(destination)
    return written


def hand_over(root: Path) -> int:
    """Give everything root wrote under the course folder to that folder's owner; how many paths.

    Grading needs root (the sandbox), the formgrader and feedback must not run as root: the
    instructor's account owns the course folder, and what ``portbinding grade`` wrote there
    (autograded/, gradebook.db, records) becomes that account's, readable and writable by it.
    Nothing happens when root owns the folder itself or when not run as root. Directories are
    walked by file descriptor without following links, so no path swapped in by a link leads
    outside the course.
    """
    owner = root.stat()
    if os.geteuid() != 0 or owner.st_uid == 0:
        return 0
    changed = 0
    for _, dirs, files, folder in os.fwalk(root, follow_symlinks=False):
        for name in [*dirs, *files]:
            if os.stat(name, dir_fd=folder, follow_symlinks=False).st_uid == 0:
                os.chown(name, owner.st_uid, owner.st_gid, dir_fd=folder, follow_symlinks=False)
                changed += 1
    return changed
