"""``portbinding grade --backend celery``: one submission -> one isolated worker -> one result, merged once.

nbgrader has no parallel or multi-machine grading of its own (its issue #174); graders that
scale run one isolated job per submission on a queue. This backend uses Celery with Redis
(Debian's ``redis-server``) as broker and result store -- the pair TU Wien's Grader Service
runs, with no broker to operate beyond one Redis process:

* The coordinator (``grade_distributed``, where the course and gradebook live) sends one task
  per submission. The task carries everything the worker needs as JSON: the course config,
  the assignment's source and released notebooks, a gradebook holding the assignment but no
  students, and the submission's regular files. Workers need no shared filesystem. The
  config must be the course's own, as installed on the worker (nbgrader runs it as Python, as
  root); notebooks run only in the sandbox. The queue is still a door to root on the workers'
  grading machinery: keep Redis private and password-protected (``requirepass``).
* A worker (``portbinding grade-worker --broker URL``, one submission at a time; ``worker``)
  lays that out as a course of its own and grades it with ``portbinding grade`` -- the same sandbox,
  door and limits as the local pool -- against *its own* container engine (DOCKER_HOST), then
  returns the scores, the autograded notebook, its scratch gradebook and the record.
* The coordinator merges each result into the course's gradebook exactly once: a ledger keyed
  by submission id (student, assignment, timestamp and file digests) and attempt (one per
  ``portbinding grade`` run) makes a result delivered twice a no-op.
* A worker that dies mid-submission loses nothing: tasks are acknowledged only after they
  finish (``acks_late``); a pool process killed mid-task rejects and requeues it at once
  (``reject_on_worker_lost``); a whole worker (or machine) that vanishes leaves the message
  unacknowledged, and Redis hands it to another worker once the visibility timeout passes.
  The grading run a dead pool process had started is stopped and cleans up, and the requeued
  task waits until it has (see ``worker``): one submission is never graded twice at once.

Grader faults on a worker (no engine, a sandbox that could not be built) come back with the
worker's status and are never merged as the student's grade.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portbinding.errors import PortBindingError
from portbinding.grading import gradebook
from portbinding.grading.course import Course
from portbinding.grading.grade import MAX_SUBMISSION_BYTES, GradeOptions, Outcome

LOGGER = logging.getLogger(__name__)

TASK_NAME = "portbinding.grade_submission"
QUEUE = "portbinding-grading"
# Headroom over a submission's own time limit before Redis gives an unacknowledged task to
# another worker: a live worker must never see its task handed out twice.
VISIBILITY_MARGIN_S = 120.0
MERGEABLE = ("graded", "zero")


class ClusterError(PortBindingError):
    """The distributed grading backend cannot do what was asked."""


@dataclass(frozen=True)
class ClusterOptions:
    """Where the queue is and how long a silent worker keeps its task."""

    broker: str
    visibility_timeout_s: float | None = None  # default: the time limit + VISIBILITY_MARGIN_S
    stall_timeout_s: float | None = None  # no result at all for this long: give up (default: generous)


def make_app(broker: str, *, visibility_timeout_s: float) -> Any:
    """The Celery app for ``broker`` (Redis), with the settings that keep a submission from being lost.

    The coordinator sends tasks by name; only a worker registers the task (``worker.run_worker``).
    """
    from celery import Celery

    app = Celery("portbinding-grading", broker=broker, backend=broker)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # a worker holds only the submission it grades
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_default_queue=QUEUE,
        result_expires=24 * 3600,
        broker_transport_options={"visibility_timeout": int(visibility_timeout_s)},
        result_backend_transport_options={"visibility_timeout": int(visibility_timeout_s)},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    return app


# ------------------------------------------------------------------------------ the coordinator


def submission_id(course: Course, assignment: str, student: str) -> str:
    """A digest of the submission as collected: the same files give the same id, on any machine."""
    digest = hashlib.sha256(f"{assignment}\0{student}".encode())
    for relative, data in sorted(_regular_files(course.submitted(student, assignment)).items()):
        digest.update(relative.encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()[:20]


def grade_distributed(
    course: Course,
    assignment: str,
    *,
    cluster: ClusterOptions,
    students: list[str] | None = None,
    options: GradeOptions | None = None,
    progress: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Grade every submission of ``assignment`` on the workers behind ``cluster.broker``."""
    options = options or GradeOptions()
    gradebook.require_assignment(course, assignment)
    chosen = students or course.students(assignment)
    visibility = cluster.visibility_timeout_s or options.time_limit_s + VISIBILITY_MARGIN_S
    app = make_app(cluster.broker, visibility_timeout_s=visibility)
    ledger = Ledger(course.records(assignment) / "merged.json")
    material = _course_material(course, assignment)
    pending: dict[str, tuple[str, Any]] = {}
    outcomes: dict[str, Outcome] = {}
    try:
        _check_broker(app, cluster.broker)
        for student in chosen:
            sid = submission_id(course, assignment, student)
            attempt = ledger.next_attempt(sid)
            files = _regular_files(course.submitted(student, assignment))
            if sum(len(data) for data in files.values()) > MAX_SUBMISSION_BYTES:
                outcomes[student] = _zero_here(
                    course,
                    assignment,
                    student,
                    "The submission is larger than "
                    f"{MAX_SUBMISSION_BYTES // 2**20} MB; submit only the assignment's files.",
                )
                continue
            payload = {
                **material,
                "student": student,
                "submission_id": sid,
                "attempt": attempt,
                "files": {name: _b64(data) for name, data in files.items()},
                "time_limit_s": options.time_limit_s,
                "cell_timeout_s": options.cell_timeout_s,
            }
            task_id = f"{assignment}-{sid}-{attempt}"
            pending[task_id] = (
                student,
                app.send_task(TASK_NAME, args=[payload], task_id=task_id, queue=QUEUE),
            )
        stall = cluster.stall_timeout_s or max(3600.0, 2 * visibility)
        last_progress = time.monotonic()
        while pending:
            finished = [task_id for task_id, (_, result) in pending.items() if result.ready()]
            for task_id in finished:
                student, result = pending.pop(task_id)
                outcome = _apply(course, assignment, student, result, ledger)
                result.forget()
                outcomes[student] = outcome
                if progress is not None:
                    progress(outcome)
                last_progress = time.monotonic()
            if pending and time.monotonic() - last_progress > stall:
                raise ClusterError(
                    f"No result came back for {stall:.0f} s; {len(pending)} submission(s) still queued.",
                    hint="start workers (`portbinding grade-worker --broker URL` on each grading machine); "
                    "the queued submissions stay queued and this command can be run again",
                )
            if pending and not finished:
                _wait_for_any(pending, timeout=2.0)
    finally:
        with contextlib.suppress(Exception):
            app.close()
    order = {student: index for index, student in enumerate(chosen)}
    return sorted(outcomes.values(), key=lambda outcome: order[outcome.student])


def _wait_for_any(pending: dict[str, tuple[str, Any]], *, timeout: float) -> None:
    """Block until the oldest pending task finishes or ``timeout`` passes (the result store's own wait)."""
    _, result = next(iter(pending.values()))
    with contextlib.suppress(Exception):  # a timeout or the task's own failure: both are read above
        result.get(timeout=timeout, propagate=False, disable_sync_subtasks=False)


def _check_broker(app: Any, broker: str) -> None:
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=2, timeout=5)
    except Exception as exc:  # kombu raises its own, transport-specific errors
        raise ClusterError(
            f"The grading queue at {_redact(broker)} does not answer: {exc}",
            hint="start Redis there (Debian: `apt-get install redis-server`) or pass the right --broker",
        ) from exc


def _redact(url: str) -> str:
    """The broker URL without its password, for messages."""
    if "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://***@{rest.split('@', 1)[1]}"


def _course_material(course: Course, assignment: str) -> dict[str, Any]:
    """What every task of this run carries besides the submission: config, source, release, gradebook."""
    with tempfile.TemporaryDirectory(prefix="pbl-template-") as scratch:
        template = Path(scratch) / "gradebook.db"
        with gradebook.locked(course):
            shutil.copyfile(course.root / "gradebook.db", template)
        _strip_students(template)
        return {
            "assignment": assignment,
            "config": (course.root / "nbgrader_config.py").read_text(),
            "source": {n: _b64(d) for n, d in _regular_files(course.source(assignment)).items()},
            "release": {n: _b64(d) for n, d in _regular_files(course.release(assignment)).items()},
            "gradebook": _b64(template.read_bytes()),
        }


def _strip_students(path: Path) -> None:
    """Keep the assignments and their notebooks, drop every student (and so every submission)."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{path}") as gb:
        for student in list(gb.students):
            gb.remove_student(student.id)


def _apply(course: Course, assignment: str, student: str, result: Any, ledger: Ledger) -> Outcome:
    """Merge one worker's result into the course, unless this submission and attempt were merged."""
    if not result.successful():
        reason = f"the grading worker failed: {str(result.result)[:300]}"
        LOGGER.error("submission of %s: %s", student, reason)
        return Outcome(student, "regrade", 0.0, 0.0, 0.0, [reason])  # a grader fault: regrade, never a zero
    data: dict[str, Any] = result.result
    outcome = Outcome(**data["outcome"])
    outcome.notes = [*outcome.notes, f"graded by {data.get('worker', '?')}"]
    key = f"{data['submission_id']}:{data['attempt']}"
    if ledger.seen(key) or outcome.status not in MERGEABLE:
        return outcome  # already merged (a redelivered task), or a grader fault: the old grade stays
    with tempfile.TemporaryDirectory(prefix="pbl-result-") as scratch:
        scratch_db = Path(scratch) / "gradebook.db"
        scratch_db.write_bytes(_unb64(data["gradebook"]))
        outcome.score, outcome.max_score = gradebook.merge(
            course, f"sqlite:///{scratch_db}", assignment, student
        )
        autograded = Path(scratch) / "autograded"
        _write_files(autograded, data["autograded"])
        gradebook.copy_back(autograded, course.autograded(student, assignment))
    if data.get("record") is not None:
        folder = course.records(assignment)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{student}.json").write_text(json.dumps(data["record"], indent=1))
    ledger.add(key, {"student": student, "worker": data.get("worker"), "task": result.id})
    return outcome


def _zero_here(course: Course, assignment: str, student: str, reason: str) -> Outcome:
    max_score = gradebook.record_zero(course, assignment, student, reason, timestamp=None)
    return Outcome(student, "zero", 0.0, max_score, 0.0, [reason])


class Ledger:
    """Which (submission id, attempt) pairs are already in the gradebook: ``reports/<a>/merged.json``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}

    def seen(self, key: str) -> bool:
        return key in self._data

    def next_attempt(self, sid: str) -> int:
        attempts = [int(k.partition(":")[2]) for k in self._data if k.startswith(f"{sid}:")]
        return max(attempts, default=0) + 1

    def add(self, key: str, entry: dict[str, Any]) -> None:
        self._data[key] = entry
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self._data, indent=1))
        temporary.replace(self.path)


# ------------------------------------------------------------------------------ files


def _regular_files(folder: Path) -> dict[str, bytes]:
    """Every regular file under ``folder`` by relative path; links are never followed."""
    found: dict[str, bytes] = {}
    if not folder.is_dir():
        return found
    for top, _dirs, files in os.walk(folder, followlinks=False):
        for name in files:
            path = Path(top) / name
            if path.is_symlink() or not path.is_file():
                continue
            found[str(path.relative_to(folder))] = path.read_bytes()
    return found


def _write_files(folder: Path, files: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for relative, data in files.items():
        target = (folder / relative).resolve()
        if not target.is_relative_to(folder.resolve()):
            raise ClusterError(f"A task named a file outside its folder: {relative!r}.")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(_unb64(data))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"))
