"""`nbgrader collect` takes a submission only from the student it names (``SafeExchangeCollect``).

Every student may write the exchange's inbound/, and nbgrader reads the student id from the
folder's name: one student dropping ``bob+ASSIGNMENT+<later timestamp>+x`` there replaced bob's
submission (nbgrader only warned). The impostor here is ``nobody`` (uid 65534), bob is ``jovyan``.
"""

from __future__ import annotations

import os
import pwd
from datetime import datetime
from pathlib import Path

import pytest

from portbinding.grading.course import Course, run_nbgrader
from tests.grading.conftest import COURSE_ID, EX01, make_course

IMPOSTOR_UID, STUDENT = 65534, "jovyan"


def _inbound(exchange: Path, name: str, text: str, uid: int) -> None:
    folder = exchange / COURSE_ID / "inbound" / name
    folder.mkdir(parents=True)
    (folder / f"{EX01}.ipynb").write_text(text)
    (folder / "timestamp.txt").write_text(name.split("+")[2])
    for path in (folder, *folder.iterdir()):
        os.chown(path, uid, uid)


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> Course:
    root = tmp_path_factory.mktemp("collect")
    course = make_course(root / "course", (EX01,))
    exchange = root / "exchange"
    student_uid = pwd.getpwnam(STUDENT).pw_uid
    _inbound(exchange, f"{STUDENT}+{EX01}+2025-11-20 10:00:00.000000 UTC+aaaa", "REAL", student_uid)
    _inbound(exchange, f"{STUDENT}+{EX01}+2025-11-21 10:00:00.000000 UTC+bbbb", "FORGED", IMPOSTOR_UID)
    _inbound(exchange, f"=HYPERLINK(1)+{EX01}+2025-11-21 10:00:00.000000 UTC+cccc", "ODD", IMPOSTOR_UID)
    # nobody's own, submitted now, claiming a time long past (before any deadline)
    _inbound(exchange, f"nobody+{EX01}+2020-01-01 00:00:00.000000 UTC+dddd", "LATE", IMPOSTOR_UID)
    run_nbgrader(["collect", EX01, f"--Exchange.root={exchange}"], cwd=course.root)
    return course


def test_a_submission_in_another_students_name_is_not_collected(collected: Course) -> None:
    """The student's own (older) submission is collected, not the impostor's later one."""
    notebook = collected.submitted(STUDENT, EX01) / f"{EX01}.ipynb"
    assert notebook.read_text() == "REAL", f"collected {notebook.read_text()!r}: the impostor's replaced it"


def test_a_made_up_student_id_is_not_collected(collected: Course) -> None:
    """A folder named after no account it belongs to makes no student at all."""
    assert sorted(p.name for p in (collected.root / "submitted").iterdir()) == [STUDENT, "nobody"]


def test_a_submission_claiming_an_earlier_time_gets_the_time_its_files_were_made(collected: Course) -> None:
    """timestamp.txt is the student's word: submitted/ gets the files' own (unforgeable) time instead."""
    from nbgrader.utils import parse_utc

    stamp = parse_utc((collected.submitted("nobody", EX01) / "timestamp.txt").read_text())
    assert stamp > datetime(2025, 1, 1), f"the claimed time was kept: {stamp}"
    assert (collected.submitted(STUDENT, EX01) / "timestamp.txt").is_file()
