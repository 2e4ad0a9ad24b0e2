"""Hostile submissions as files: ``tests/grading/submissions/<student>.toml``, one attack each.

Each file is graded in the same ``portbinding grade --workers 2`` run as the honest
submissions (see ``graded_course``), and ``test_round_trip`` checks what it says under
``[expect]``. The format (see submissions/README.md)::

    # One line: the attack, and the channel it tries.
    assignment = "ex01-unreachable-notebook"   # optional, this is the default
    reference = false          # start from the instructors' solution instead of the released notebook
    via_exchange = false       # submitted through an nbgrader exchange and `nbgrader collect`
    student_owned = false      # the submission's folder and files belong to the student's own uid

    [answers]                  # grade_id -> the new source of that answer cell
    ex01-cause-answer = '''...'''

    [files]                    # extra regular files in the submission folder: name -> text
    [symlinks]                 # links planted in the submission folder: name -> target
    [hardlinks]                # hard links planted there (made by root after ownership is set)

    [expect]
    score = 0.0                # the exact score; or ``full = true`` for every point
    status = "zero"            # optional: graded, zero or regrade
    feedback_any = ["..."]     # at least one of these is in the feedback
    feedback_all = ["..."]     # every one of these is in the feedback
    feedback_none = ["..."]    # none of these is in the feedback (secrets the attack reaches for)
    overlaps = "alice"         # this submission's door window overlapped that student's checks
    record_max_bytes = 300_000 # its grading record (reports/ASSIGNMENT/STUDENT.json) stays this small

Strings may use placeholders, filled in by the harness: ``@COURSE@`` (the course folder),
``@SENTINEL@`` (a world-writable file of the grading machine), ``@SECRET@`` (a file only root
may read) and ``@SECRET_TEXT@`` (its content), ``@EXCHANGE@`` (the nbgrader exchange's root),
``@SOLUTION_MARKER@`` (a comment in the ex01 solution, found only in source/ and the
reference submissions).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUBMISSIONS = Path(__file__).resolve().parent / "submissions"
EX01 = "ex01-unreachable-notebook"
_KEYS = {"assignment", "reference", "via_exchange", "student_owned", "answers", "files", "symlinks",
         "hardlinks", "expect"}  # fmt: skip
_EXPECT_KEYS = {"score", "full", "status", "feedback_any", "feedback_all", "feedback_none", "overlaps",
                "record_max_bytes"}  # fmt: skip


@dataclass(frozen=True)
class Expect:
    """What grading a submission must show."""

    score: float | None = None
    full: bool = False
    status: str | None = None
    feedback_any: tuple[str, ...] = ()
    feedback_all: tuple[str, ...] = ()
    feedback_none: tuple[str, ...] = ()
    overlaps: str | None = None
    record_max_bytes: int | None = None


@dataclass(frozen=True)
class Attack:
    """One hostile submission, read from its file, placeholders filled in."""

    student: str
    about: str
    assignment: str = EX01
    reference: bool = False
    via_exchange: bool = False
    student_owned: bool = False
    answers: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    symlinks: dict[str, str] = field(default_factory=dict)
    hardlinks: dict[str, str] = field(default_factory=dict)
    expect: Expect = field(default_factory=Expect)


def names() -> list[str]:
    """The students of every attack file, for test parametrization (read without placeholders)."""
    return sorted(path.stem for path in SUBMISSIONS.glob("*.toml"))


def load(values: dict[str, str]) -> list[Attack]:
    """Every attack file, with ``values`` (``{"@COURSE@": ...}``) put in for the placeholders."""
    return [load_one(path, values) for path in sorted(SUBMISSIONS.glob("*.toml"))]


def load_one(path: Path, values: dict[str, str]) -> Attack:
    """One attack file; ValueError naming the file when it does not follow the format."""
    text = path.read_text()
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path.name}: not TOML ({error})") from None
    unknown = (set(data) - _KEYS) | (set(data.get("expect", {})) - _EXPECT_KEYS)
    if unknown:
        raise ValueError(f"{path.name}: unknown keys {sorted(unknown)}; see {__name__}'s docstring")
    first = text.splitlines()[0] if text else ""
    if not first.startswith("# "):
        raise ValueError(f"{path.name}: the first line must be a comment saying what the attack does")
    expect: dict[str, Any] = dict(data.get("expect", {}))
    for key in ("feedback_any", "feedback_all", "feedback_none"):
        expect[key] = tuple(expect.get(key, ()))
    if "score" not in expect and not expect.get("full"):
        raise ValueError(f"{path.name}: [expect] needs a score (or full = true)")
    return Attack(
        student=path.stem,
        about=first[2:],
        assignment=str(data.get("assignment", EX01)),
        reference=bool(data.get("reference", False)),
        via_exchange=bool(data.get("via_exchange", False)),
        student_owned=bool(data.get("student_owned", False)),
        answers={str(k): str(v) for k, v in data.get("answers", {}).items()},
        files={str(k): str(v) for k, v in data.get("files", {}).items()},
        symlinks={str(k): str(v) for k, v in data.get("symlinks", {}).items()},
        hardlinks={str(k): str(v) for k, v in data.get("hardlinks", {}).items()},
        expect=Expect(**expect),
    )
