"""Moving grades into the course's gradebook -- the only writer, one submission at a time.

Each submission is autograded in a scratch course with its own gradebook (SQLite does not
take concurrent writers well), then its grades are copied into the course's gradebook here,
under a lock. A submission that could not be graded at all (too big, unreadable, stopped by
the wall-time limit) is recorded as zero with the reason, on the *released* notebook, so
that generate_feedback still has something to render and no learner content is trusted.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbgrader.api import Gradebook, MissingEntry

from portbinding.grading.course import Course, CourseError
from portbinding.grading.execute import NOTE_MARK, error_output, test_cells
from portbinding.grading.safecopy import CopyRules, copy_tree

_process_lock = threading.Lock()
AUTOGRADED_MODE = 0o444  # what nbgrader's autograde gives the notebooks it writes


@contextmanager
def locked(course: Course) -> Iterator[None]:
    """Exclusive use of the course's gradebook: threads of this process, and other processes.

    The lock file is the grader's alone (0600): whoever can open a file can flock it, and a
    lock held by someone else would stall every grading worker.
    """
    path = course.root / ".gradebook.lock"
    with _process_lock:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # also one made world-readable by an older version
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def require_assignment(course: Course, assignment: str) -> list[str]:
    """The assignment's notebook names; CourseError unless generate_assignment has run for it."""
    try:
        with Gradebook(course.db_url) as gb:
            names = [notebook.name for notebook in gb.find_assignment(assignment).notebooks]
    except MissingEntry:
        raise CourseError(
            f"The gradebook has no assignment {assignment!r} yet.",
            hint=f"run `nbgrader generate_assignment {assignment}` in {course.root} first",
        ) from None
    missing = [n for n in names if not (course.release(assignment) / f"{n}.ipynb").is_file()]
    if missing:
        raise CourseError(
            f"release/{assignment}/ lacks {', '.join(missing)}.",
            hint=f"run `nbgrader generate_assignment {assignment} --force` in {course.root}",
        )
    return names


def merge(course: Course, scratch_db_url: str, assignment: str, student: str) -> tuple[float, float]:
    """Copy one submission's grades from a scratch gradebook into the course's; return (score, max)."""
    with Gradebook(scratch_db_url) as source:
        submission = source.find_submission(assignment, student)
        timestamp = submission.timestamp
        grades = [
            (nb.name, g.name, g.auto_score, g.manual_score, g.extra_credit, g.needs_manual_grade)
            for nb in submission.notebooks
            for g in nb.grades
        ]
        comments = [
            (nb.name, c.name, c.auto_comment, c.manual_comment)
            for nb in submission.notebooks
            for c in nb.comments
        ]
        notebooks = [(nb.name, nb.flagged, nb.late_submission_penalty) for nb in submission.notebooks]
    with locked(course), Gradebook(course.db_url) as target:
        target.update_or_create_student(student)
        merged = target.update_or_create_submission(assignment, student, timestamp=timestamp)
        for name, flagged, penalty in notebooks:
            notebook = target.find_submission_notebook(name, assignment, student)
            notebook.flagged = flagged
            notebook.late_submission_penalty = penalty
        for notebook_name, cell, auto, manual, extra, needs_manual in grades:
            grade = target.find_grade(cell, notebook_name, assignment, student)
            grade.auto_score, grade.manual_score, grade.extra_credit = auto, manual, extra
            grade.needs_manual_grade = needs_manual
        for notebook_name, cell, auto_comment, manual_comment in comments:
            comment = target.find_comment(cell, notebook_name, assignment, student)
            comment.auto_comment, comment.manual_comment = auto_comment, manual_comment
        target.db.commit()
        return float(merged.score), float(merged.max_score)


def record_zero(
    course: Course, assignment: str, student: str, reason: str, *, timestamp: datetime | None
) -> float:
    """Grade a submission zero for ``reason``: an autograded notebook (the released one) and zero grades."""
    names = require_assignment(course, assignment)
    destination = course.autograded(student, assignment)
    shutil.rmtree(destination, ignore_errors=True)
    destination.mkdir(parents=True)
    for name in names:
        notebook = nbformat.read(course.release(assignment) / f"{name}.ipynb", as_version=4)  # type: ignore[no-untyped-call]
        _mark_zero(notebook, reason)
        nbformat.write(notebook, destination / f"{name}.ipynb")  # type: ignore[no-untyped-call]
        os.chmod(destination / f"{name}.ipynb", AUTOGRADED_MODE)
    with locked(course), Gradebook(course.db_url) as gb:
        gb.update_or_create_student(student)
        submission = gb.update_or_create_submission(
            assignment, student, **({"timestamp": timestamp} if timestamp else {})
        )
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                grade.auto_score, grade.manual_score, grade.needs_manual_grade = 0.0, None, False
        gb.db.commit()
        return float(submission.max_score)


def _mark_zero(notebook: NotebookNode, reason: str) -> None:
    for _, cell in test_cells(notebook):
        cell.outputs = [error_output("GradedZero", reason)]
    note = nbformat.v4.new_markdown_cell(  # type: ignore[no-untyped-call]
        f"**Grading note: this submission was graded zero.**\n\n- {reason}\n\n"
        "Your own notebook could not be graded, so this is the released version of the assignment.",
        id=NOTE_MARK,
        metadata={"tags": [NOTE_MARK]},
    )
    notebook.cells.insert(0, note)


def copy_back(scratch: Path, destination: Path) -> None:
    """Copy the autograded folder into the course: regular files only, never through symlinks,
    each with its own permission bits (nbgrader's, not this process's umask)."""
    shutil.rmtree(destination, ignore_errors=True)
    rules = CopyRules(max_file_bytes=2**31, max_total_bytes=2**33, max_files=10_000, owner=None)
    with contextlib.suppress(FileNotFoundError):
        copy_tree(scratch, destination, rules)
    destination.mkdir(parents=True, exist_ok=True)
