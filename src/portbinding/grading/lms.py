"""Grades out to an LMS: one CSV row per student -- id, name, total, then each question's points.

The layout Canvas, Moodle and Blackboard all import (an identifier column, a name column, one
numeric column per graded item; the header names the item and its maximum). It sits beside
nbgrader's own ``nbgrader export`` (one row per student *and* assignment, nbgrader's columns),
written by ``portbinding report`` into ``reports/<assignment>/``. Names come from the gradebook,
or from a roster CSV (id,name,role) when the gradebook has none. A student with no submission
gets empty cells (an LMS reads that as "not graded", never as zero).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry

from portbinding.grading.course import Course, CourseError, run_nbgrader


@dataclass(frozen=True)
class Row:
    """One student's line in the export."""

    id: str
    name: str
    total: float | None
    points: dict[str, float | None]


def lms_rows(
    course: Course, assignment: str, *, names: dict[str, str] | None = None
) -> tuple[list[str], list[Row]]:
    """The questions (``cell (max N)``) and one row per student of the gradebook (and of ``names``)."""
    names = names or {}
    with Gradebook(course.db_url) as gb:
        try:
            found = gb.find_assignment(assignment)
        except MissingEntry:
            raise CourseError(
                f"The gradebook has no assignment {assignment!r}.",
                hint="grade it first: `portbinding grade` (after `nbgrader generate_assignment`)",
            ) from None
        cells = [(cell.name, float(cell.max_score)) for nb in found.notebooks for cell in nb.grade_cells]
        students = {s.id: " ".join(p for p in (s.first_name, s.last_name) if p) for s in gb.students}
        rows = []
        for student in sorted(set(students) | set(names)):
            name = names.get(student) or students.get(student) or ""
            try:
                submission = gb.find_submission(assignment, student)
            except MissingEntry:
                rows.append(Row(student, name, None, {cell: None for cell, _ in cells}))
                continue
            points = {
                grade.name: float(grade.score)
                for notebook in submission.notebooks
                for grade in notebook.grades
            }
            rows.append(Row(student, name, float(submission.score), {c: points.get(c) for c, _ in cells}))
    headers = [f"{cell} (max {maximum:g})" for cell, maximum in cells]
    return headers, rows


def write_lms_csv(
    course: Course, assignment: str, path: Path, *, names: dict[str, str] | None = None
) -> Path:
    """Write the LMS CSV for ``assignment`` to ``path``; returns ``path``."""
    headers, rows = lms_rows(course, assignment, names=names)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "name", "total", *headers])
        for row in rows:
            cells = ["" if value is None else f"{value:g}" for value in row.points.values()]
            writer.writerow([row.id, row.name, "" if row.total is None else f"{row.total:g}", *cells])
    return path


def write_nbgrader_export(course: Course, assignment: str, path: Path) -> Path:
    """nbgrader's own CSV export of ``assignment`` (``nbgrader export``), beside the LMS one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    run_nbgrader(["export", f"--to={path}", f"--assignment=['{assignment}']"], cwd=course.root)
    return path
