"""``portbinding grade --backend celery`` on real workers: two "other machines" and this one.

A class of ex01 submissions is graded twice: locally with one worker (the reference), and over
Redis by a worker in each of two network namespaces (each with its own dockerd, the course images
loaded from a cached ``docker save``) plus one worker here. The two gradebooks must agree cell by
cell. A second class is graded by a worker that is killed (SIGKILL, the whole worker) while it
grades a submission: once the visibility timeout passes another worker takes it over, and every
submission ends up merged exactly once, with the grade its answers deserve.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import requests

from portbinding.grading.course import Course, nbgrader_env
from portbinding.grading.lms import write_lms_csv, write_nbgrader_export
from portbinding.probe import wait_until
from tests.grading.conftest import EX01, WRONG, make_course, submit
from tests.hub.cluster import broker_url, grade_worker, redis_server, worker_host

PORTBINDING = [sys.executable, "-m", "portbinding"]
GRADE_ARGS = ["--cell-timeout", "30", "--time-limit", "240", "--json"]
CLASS_SIZE = 6  # the bench grades 30; the test keeps to what proves agreement
EXPECTED = {"reference": 5.0, "wrong": 2.0, "blank": 0.0}


def _kind(index: int) -> str:
    return ("reference", "wrong", "blank")[index % 3]


def _make_class(root: Path, size: int) -> Course:
    course = make_course(root, (EX01,))
    for index in range(size):
        student = f"s{index + 1:02d}"
        kind = _kind(index)
        if kind == "reference":
            submit(course, student, EX01)
        else:
            submit(course, student, EX01, WRONG[EX01] if kind == "wrong" else {}, reference=False)
    return course


def _grades(course: Course) -> dict[str, dict[str, float]]:
    """{student: {cell: score, "total": score}} from the course's gradebook."""
    from nbgrader.api import Gradebook

    found: dict[str, dict[str, float]] = {}
    with Gradebook(course.db_url) as gb:
        for submission in gb.assignment_submissions(EX01):
            cells = {g.name: float(g.score) for nb in submission.notebooks for g in nb.grades}
            found[submission.student.id] = {**cells, "total": float(submission.score)}
    return found


def _grade(course: Course, *extra: str, timeout: float = 1200) -> dict[str, dict[str, Any]]:
    result = subprocess.run(
        [*PORTBINDING, "grade", EX01, "--course", str(course.root), *GRADE_ARGS, *extra],
        env=nbgrader_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"portbinding grade {' '.join(extra)} failed:\n{result.stderr[-3000:]}"
    return {o["student"]: o for o in json.loads(result.stdout)["submissions"]}


@pytest.fixture(scope="module")
def classes(docker_client: docker.DockerClient, hub_base: Path) -> Iterator[Path]:
    folder = hub_base / "distributed"
    folder.mkdir(parents=True, exist_ok=True)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def two_gradings(docker_client: docker.DockerClient, classes: Path) -> dict[str, Any]:
    """The same class graded locally (1 worker) and over two namespace workers plus a local one."""
    local = _make_class(classes / "local", CLASS_SIZE)
    spread = Course(classes / "spread")
    shutil.copytree(local.root, spread.root)
    started = time.monotonic()
    local_outcomes = _grade(local, "--workers", "1")
    local_seconds = time.monotonic() - started
    with contextlib.ExitStack() as stack:
        hosts = [stack.enter_context(worker_host(docker_client)) for _ in range(2)]
        port, password = stack.enter_context(
            redis_server([f"{h.address.rsplit('.', 1)[0]}.1" for h in hosts])
        )
        for index, host in enumerate(hosts):
            gateway = f"{host.address.rsplit('.', 1)[0]}.1"  # this machine's end of the pair
            stack.enter_context(
                grade_worker(
                    broker_url(gateway, port, password),
                    f"ns{index}",
                    classes / "workers",
                    netns=host.netns,
                    docker_host=host.unix_url,
                )
            )
        stack.enter_context(
            grade_worker(broker_url("127.0.0.1", port, password), "here", classes / "workers")
        )
        started = time.monotonic()
        spread_outcomes = _grade(
            spread, "--backend", "celery", "--broker", broker_url("127.0.0.1", port, password)
        )
        spread_seconds = time.monotonic() - started
        containers_on_workers = [len(h.client.containers.list(all=True)) for h in hosts]
    return {
        "local": local,
        "spread": spread,
        "local_outcomes": local_outcomes,
        "spread_outcomes": spread_outcomes,
        "seconds": {"local_1_worker": local_seconds, "celery_3_workers": spread_seconds},
        "containers_left": containers_on_workers,
    }


def test_distributed_gradebook_equals_local_grading(two_gradings: dict[str, Any]) -> None:
    """Every student's every cell: the same score from the cluster as from one local worker."""
    local, spread = _grades(two_gradings["local"]), _grades(two_gradings["spread"])
    assert len(local) == CLASS_SIZE, f"the local grading graded {sorted(local)}"
    assert spread == local, (
        f"cluster vs local:\n{json.dumps(spread, indent=1)}\n{json.dumps(local, indent=1)}"
    )
    for index in range(CLASS_SIZE):
        student = f"s{index + 1:02d}"
        assert local[student]["total"] == EXPECTED[_kind(index)], (
            f"{student} ({_kind(index)}): {local[student]}"
        )
    print("\ngrading seconds:", json.dumps(two_gradings["seconds"]))


def test_every_worker_took_submissions_and_left_its_engine_clean(two_gradings: dict[str, Any]) -> None:
    """Both namespace workers and the local one graded something; no container is left on theirs."""
    workers = {
        next(n for n in o["notes"] if n.startswith("graded by"))
        for o in two_gradings["spread_outcomes"].values()
    }
    assert workers == {"graded by ns0", "graded by ns1", "graded by here"}, f"who graded: {workers}"
    assert two_gradings["containers_left"] == [0, 0], (
        f"containers left on the workers' engines: {two_gradings['containers_left']}"
    )


def test_autograded_notebooks_and_records_come_back(two_gradings: dict[str, Any]) -> None:
    """The coordinator has each autograded notebook and record, and merged each submission once."""
    spread: Course = two_gradings["spread"]
    for student in two_gradings["spread_outcomes"]:
        assert (spread.autograded(student, EX01) / f"{EX01}.ipynb").is_file(), (
            f"no autograded notebook for {student}"
        )
        assert (spread.records(EX01) / f"{student}.json").is_file(), f"no record for {student}"
    ledger = json.loads((spread.records(EX01) / "merged.json").read_text())
    assert len(ledger) == CLASS_SIZE, f"merged entries: {sorted(ledger)}"


def test_lms_csv_agrees_with_nbgrader_export(two_gradings: dict[str, Any], tmp_path: Path) -> None:
    """One row per student (id, name, total, each question); totals equal nbgrader's own export."""
    spread: Course = two_gradings["spread"]
    lms = list(
        csv.DictReader(write_lms_csv(spread, EX01, tmp_path / "lms.csv", names={"s01": "Ada L"}).open())
    )
    exported = list(csv.DictReader(write_nbgrader_export(spread, EX01, tmp_path / "nb.csv").open()))
    assert [row["id"] for row in lms] == sorted(two_gradings["spread_outcomes"]), f"rows: {lms}"
    assert lms[0]["name"] == "Ada L", f"the roster's name is not used: {lms[0]}"
    theirs = {row["student_id"]: float(row["score"]) for row in exported}
    ours = {row["id"]: float(row["total"]) for row in lms}
    assert ours == theirs, f"LMS totals {ours} differ from nbgrader export {theirs}"
    questions = [key for key in lms[0] if key.startswith("ex01-")]
    assert len(questions) == 3, f"question columns: {questions}"
    for row in lms:
        assert sum(float(row[q]) for q in questions) == float(row["total"]), f"questions do not add up: {row}"


def test_a_worker_killed_mid_submission_loses_nothing(
    docker_client: docker.DockerClient, classes: Path
) -> None:
    """SIGKILL the whole worker while it grades: the submission is graded by another, merged once."""
    course = _make_class(classes / "killed", 2)
    visibility = 45.0
    with redis_server() as (port, password):
        url = broker_url("127.0.0.1", port, password)
        with grade_worker(url, "doomed", classes / "workers", visibility_timeout_s=visibility) as doomed:
            coordinator = subprocess.Popen(
                [
                    *PORTBINDING,
                    "grade",
                    EX01,
                    "--course",
                    str(course.root),
                    *GRADE_ARGS,
                    "--backend",
                    "celery",
                    "--broker",
                    url,
                ],
                env=nbgrader_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            received = wait_until(lambda: "received" in doomed.log.read_text(errors="replace"), timeout=60)
            assert received, f"the worker never received a submission:\n{doomed.log.read_text()[-2000:]}"
            for pid in doomed.pids():  # the worker and its pool process: the machine "dies"
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            killed_at = time.monotonic()
        with grade_worker(url, "rescuer", classes / "workers", visibility_timeout_s=visibility):
            out, err = coordinator.communicate(timeout=600)
            waited = time.monotonic() - killed_at
    assert coordinator.returncode == 0, f"the coordinator failed:\n{err[-3000:]}"
    outcomes = {o["student"]: o for o in json.loads(out)["submissions"]}
    assert set(outcomes) == {"s01", "s02"}, f"outcomes: {outcomes}"
    assert [outcomes[s]["status"] for s in ("s01", "s02")] == ["graded", "graded"], outcomes
    assert _grades(course)["s01"]["total"] == 5.0 and _grades(course)["s02"]["total"] == 2.0, _grades(course)
    assert all("graded by rescuer" in o["notes"] for o in outcomes.values()), f"who graded: {outcomes}"
    ledger = json.loads((course.records(EX01) / "merged.json").read_text())
    assert len(ledger) == 2, f"each submission merged once: {ledger}"
    assert waited >= visibility * 0.8, f"taken over after {waited:.0f} s, before the visibility timeout"


def test_a_pool_process_killed_mid_submission_is_requeued_at_once(
    docker_client: docker.DockerClient, classes: Path
) -> None:
    """SIGKILL only the process grading (the worker lives) while its run has containers up:
    requeued at once (reject_on_worker_lost), and graded again only once the killed run has
    stopped and removed its containers -- never two gradings of the submission at once."""
    course = _make_class(classes / "pool-killed", 1)
    visibility = 900.0  # far longer than the test: the requeue cannot come from the timeout
    with redis_server() as (port, password), SessionWatch(docker_client) as watch:
        url = broker_url("127.0.0.1", port, password)
        with grade_worker(url, "survivor", classes / "workers", visibility_timeout_s=visibility) as worker:
            command = [*PORTBINDING, "grade", EX01, "--course", str(course.root), *GRADE_ARGS]
            coordinator = subprocess.Popen(
                [*command, "--backend", "celery", "--broker", url],
                env=nbgrader_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            checking = wait_until(lambda: bool(watch.seen), timeout=180)
            assert checking, f"the first grading never started a container:\n{worker.log.read_text()[-2000:]}"
            children = worker.pids()[1:]
            assert children, "the worker has no pool process"
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            out, err = coordinator.communicate(timeout=400)
            log = worker.log.read_text(errors="replace")
    assert coordinator.returncode == 0, f"the coordinator failed:\n{err[-3000:]}"
    outcome = json.loads(out)["submissions"][0]
    record = course.records(EX01) / "s01.json"
    assert (outcome["status"], outcome["score"]) == ("graded", 5.0), (
        f"{json.dumps(outcome)}\n{record.read_text()[-4000:] if record.exists() else 'no record'}"
    )
    assert not watch.overlaps, f"two gradings of the submission at once: {watch.overlaps}"
    assert len(watch.seen) >= 2, f"sessions seen: {watch.seen} (the killed run's, then the requeued one's)"
    assert "WorkerLostError" in log, f"the worker did not notice its pool process die:\n{log[-2000:]}"
    assert log.count("received") >= 2, f"the submission was not delivered again:\n{log[-2000:]}"
    ledger = json.loads((course.records(EX01) / "merged.json").read_text())
    assert len(ledger) == 1, f"merged once: {ledger}"
    assert not watch.sessions(), f"containers left behind by sessions {watch.sessions()}"


class SessionWatch:
    """Which grading sessions of this test run have containers, sampled every 0.1 s in a thread.

    Sampling can miss a short overlap but never invents one: two sessions in one sample is proof.
    """

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client
        self.seen: list[str] = []  # in the order first seen
        self.overlaps: list[set[str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._filters = {
            "label": ["portbinding.owner=grader", f"portbinding.run={os.environ['PORTBINDING_RUN_ID']}"]
        }

    def __enter__(self) -> SessionWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def sessions(self) -> set[str]:
        """The sessions of the grading containers there are now."""
        containers = self.client.containers.list(all=True, sparse=True, filters=self._filters)
        return {str((c.attrs.get("Labels") or {}).get("portbinding.session")) for c in containers}

    def _watch(self) -> None:
        while not self._stop.wait(0.1):
            with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
                sessions = self.sessions()
                self.seen += sorted(sessions - set(self.seen))
                if len(sessions) > 1:
                    self.overlaps.append(sessions)
