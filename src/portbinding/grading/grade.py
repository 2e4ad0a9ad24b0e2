"""``portbinding grade``: autograde every submission of an assignment, in parallel, in sandboxes.

For each submission, in a worker:

1. A scratch course is made: the package's own nbgrader config with the course's few settings
   read as data (``rootconfig``: root never runs the course's nbgrader_config.py), source/, a
   snapshot of its gradebook,
   and the submission (``safecopy``: regular files owned like the submission's folder, never
   through links, size-checked; a submission over the limits is graded zero).
2. ``nbgrader autograde`` runs there in a process of its own (forked from a warm one, see
   ``runner``) with a wall-time limit. The course's
   config runs every notebook in the grading sandbox (``SandboxedExecute``): learner code has
   no engine, no network, limits, and reaches containers only through its door.
3. Whatever happened, the submission's sandboxes, containers and images are removed.
4. Its grades are merged into the course's gradebook under a lock, the autograded notebook is
   copied back, and a record (checks, causes, violations) is kept for ``portbinding report``.

When the grader itself failed (the sandbox could not be built, its door broke, the engine
stopped answering, nbgrader crashed), the submission is *not gradable -- regrade*: nothing
is written to the gradebook or autograded/, the previous grade stays, and the instructor is
told why. Such failures are never the student's zero.

Scratch courses keep parallel workers from writing one SQLite file at once; fresh host ports
per check keep their containers from colliding.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import secrets
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import nbformat

from portbinding.engine import Engine
from portbinding.errors import EngineUnavailable
from portbinding.grading import gradebook
from portbinding.grading.course import Course, nbgrader_env
from portbinding.grading.execute import RECORDS_ENV
from portbinding.grading.rootconfig import (
    CourseSettings,
    config_owner_warning,
    read_course_settings,
    write_grading_config,
)
from portbinding.grading.runner import Stop, run_nbgrader
from portbinding.grading.safecopy import CopyRefused, CopyRules, copy_tree
from portbinding.grading.sandbox import BASE_DIR, SESSION_ENV, reap, require_root, sweep

LOGGER = logging.getLogger(__name__)

MAX_NOTEBOOK_BYTES = 20 * 2**20
MAX_SUBMISSION_BYTES = 50 * 2**20
MAX_SUBMISSION_FILES = 200

Status = Literal["graded", "zero", "regrade"]
REGRADE = "Not gradable -- regrade"


@dataclass
class Outcome:
    """How one submission went: its score, and the reasons behind a zero (or a regrade)."""

    student: str
    status: Status
    score: float
    max_score: float
    seconds: float
    notes: list[str] = field(default_factory=list)
    session: str = ""  # labels its containers and sandboxes (portbinding ps / cleanup --session)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GradeOptions:
    """How to grade: parallel workers, wall time per submission, an optional cell timeout override."""

    workers: int = 1
    time_limit_s: float = 900.0
    cell_timeout_s: int | None = None


def grade_assignment(
    course: Course,
    assignment: str,
    *,
    students: list[str] | None = None,
    options: GradeOptions | None = None,
    progress: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Autograde the submissions of ``assignment`` (all, or ``students``); return one Outcome each."""
    options = options or GradeOptions()
    require_root()
    gradebook.require_assignment(course, assignment)
    settings = read_course_settings(course.root)  # parsed, never run: see rootconfig
    for warning in [config_owner_warning(course.root), *settings.ignored]:
        if warning:
            LOGGER.warning("%s", warning)
    chosen = students or course.students(assignment)
    run_id = secrets.token_hex(3)
    run_dir = BASE_DIR / "runs" / run_id
    run_dir.mkdir(parents=True, mode=0o700)
    template = run_dir / "gradebook.db"
    with gradebook.locked(course):
        if (course.root / "gradebook.db").exists():
            shutil.copyfile(course.root / "gradebook.db", template)
    counter = itertools.count(1)
    outcomes: list[Outcome] = []
    stop = Stop()
    try:
        with ThreadPoolExecutor(max_workers=max(1, options.workers), thread_name_prefix="grade") as pool:
            futures = [
                pool.submit(
                    _grade_one,
                    course,
                    assignment,
                    student,
                    settings,
                    template,
                    run_dir / f"{next(counter)}",
                    f"g{run_id}-{index}",
                    options,
                    stop,
                )
                for index, student in enumerate(chosen, start=1)
            ]
            try:
                for future in as_completed(futures):
                    outcome = future.result()
                    outcomes.append(outcome)
                    if progress is not None:
                        progress(outcome)
            except BaseException:
                # Interrupted (Ctrl-C, SIGTERM) or failed: end every grading now -- each still
                # removes its sandboxes and containers -- and start no other.
                stop.set()
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    finally:
        stop.close()
        shutil.rmtree(run_dir, ignore_errors=True)
    order = {student: index for index, student in enumerate(chosen)}
    return sorted(outcomes, key=lambda outcome: order[outcome.student])


def _grade_one(
    course: Course,
    assignment: str,
    student: str,
    settings: CourseSettings,
    template: Path,
    work: Path,
    session: str,
    options: GradeOptions,
    stop: Stop,
) -> Outcome:
    started = time.monotonic()
    notes: list[str] = []
    fault: str | None = None
    try:
        problem = _make_scratch_course(course, assignment, student, settings, template, work)
        if problem is None:
            problem, fault = _autograde(work, assignment, student, session, options, stop)
    finally:
        _clean_session(session)
    timestamp = course.root / "submitted" / student / assignment / "timestamp.txt"
    when = _read_timestamp(timestamp)
    records = _read_records(work / "records")
    # The sandbox's own account of the grader's failure says more than "nbgrader failed".
    fault = next((str(r["fault"]) for r in records if r.get("fault")), None) or fault
    for record in records:
        notes += [str(v.get("message")) for v in record.get("violations", [])]
    if fault is not None:
        # The grader's failure: the gradebook and autograded/ keep what they had.
        LOGGER.error("%s: %s: %s", REGRADE, student, fault)
        outcome = Outcome(student, "regrade", 0.0, 0.0, time.monotonic() - started,
                          [f"{REGRADE}: {fault}"])  # fmt: skip
    elif problem is not None:
        max_score = gradebook.record_zero(course, assignment, student, problem, timestamp=when)
        outcome = Outcome(student, "zero", 0.0, max_score, time.monotonic() - started, [problem, *notes])
    else:
        score, max_score = gradebook.merge(course, f"sqlite:///{work / 'gradebook.db'}", assignment, student)
        gradebook.copy_back(
            work / "autograded" / student / assignment, course.autograded(student, assignment)
        )
        status: Status = "zero" if notes else "graded"
        outcome = Outcome(student, status, score, max_score, time.monotonic() - started, notes)
    outcome.session = session
    _write_record(course, assignment, outcome, records)
    shutil.rmtree(work, ignore_errors=True)
    return outcome


def _make_scratch_course(
    course: Course, assignment: str, student: str, settings: CourseSettings, template: Path, work: Path
) -> str | None:
    """Lay out the scratch course; a reason to grade zero if the submission cannot be taken in."""
    work.mkdir(mode=0o700)
    write_grading_config(work, settings)
    shutil.copytree(course.source(assignment), work / "source" / assignment)
    if template.exists():
        shutil.copyfile(template, work / "gradebook.db")
    source = course.submitted(student, assignment)
    target = work / "submitted" / student / assignment
    rules = CopyRules(max_file_bytes=MAX_NOTEBOOK_BYTES, max_total_bytes=MAX_SUBMISSION_BYTES,
                      max_files=MAX_SUBMISSION_FILES)  # fmt: skip
    try:
        copied = copy_tree(source, target, rules)
    except CopyRefused as error:
        return f"The submission could not be taken in: {error}."
    except OSError as error:
        return f"The submission folder could not be read ({error.strerror})."
    for relative, why in copied.skipped:
        LOGGER.warning("%s: left out of the submission: %s (%s)", student, relative, why)
    for relative in copied.files:
        if relative.endswith(".ipynb"):
            try:
                nbformat.read(target / relative, as_version=4)  # type: ignore[no-untyped-call]
            except (ValueError, OSError, KeyError, AttributeError) as error:
                name, why = Path(relative).name, str(error)[:120]
                return f"The submitted file {name} is not a readable notebook ({why})."
    return None


def _autograde(
    work: Path, assignment: str, student: str, session: str, options: GradeOptions, stop: Stop
) -> tuple[str | None, str | None]:
    """Run nbgrader autograde in the scratch course: (a reason to grade zero, the grader's own failure)."""
    argv = ["autograde", assignment, "--student", student, "--force", f"--CourseDirectory.root={work}"]
    if options.cell_timeout_s is not None:
        argv.append(f"--Execute.timeout={options.cell_timeout_s}")
    env = nbgrader_env(**{SESSION_ENV: session, RECORDS_ENV: str(work / "records")})
    code = run_nbgrader(
        argv, cwd=work, env=env, log=work / "autograde.log", timeout=options.time_limit_s, stop=stop
    )
    if code is None:
        return (
            f"Grading this submission took longer than {options.time_limit_s:.0f} s, the limit for one "
            "submission, and was stopped."
        ), None
    autograded = work / "autograded" / student / assignment
    if code == 0 and any(autograded.glob("*.ipynb")):
        return None, None
    # Whatever a notebook does ends in a graded notebook (a zero, with the reason): nbgrader
    # failing outright is the grader's problem, to look at and grade again.
    log = ""
    with contextlib.suppress(OSError):  # a process that died before it opened its log has none
        log = (work / "autograde.log").read_text(errors="replace")
    tail = log.strip().splitlines()[-6:]
    LOGGER.error("nbgrader autograde failed for %s (exit %s):\n%s", student, code, "\n".join(tail))
    errors = [line for line in tail if "ERROR" in line] or tail
    return None, "nbgrader failed: " + (errors[-1][:300] if errors else f"exit {code}")


def _clean_session(session: str) -> None:
    """Nothing of a submission outlives its grading: sandboxes, containers, images."""
    reap(session)
    try:
        engine = Engine.connect(session=session, owner="grader")
    except EngineUnavailable as error:
        LOGGER.warning("could not sweep session %s: %s", session, error)
        return
    with contextlib.closing(engine.client):
        sweep(engine)


def _read_timestamp(path: Path) -> datetime | None:
    with contextlib.suppress(OSError, ValueError):
        from nbgrader.utils import parse_utc

        return parse_utc(path.read_text().strip())  # type: ignore[no-any-return]
    return None


def _read_records(folder: Path) -> list[dict[str, Any]]:
    records = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(path.read_text())
            if isinstance(data, dict):
                records.append(data)
    return records


def _write_record(course: Course, assignment: str, outcome: Outcome, records: list[dict[str, Any]]) -> None:
    folder = course.records(assignment)
    folder.mkdir(parents=True, exist_ok=True)
    document = {
        **outcome.to_dict(),
        "notebooks": records,
        "graded_at": datetime.now().isoformat(timespec="seconds"),
    }
    (folder / f"{outcome.student}.json").write_text(json.dumps(document, indent=1))
