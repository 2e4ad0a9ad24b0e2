"""The grader's own limits and failures: wall time, interrupts, unreadable submissions, root only, regrade.

The course lives under /srv (``srv_base``). Besides ``portbinding grade``, plain ``nbgrader
autograde`` is run on the same course: it too must never record a zero for the grader's own
failure, nor hand the kernel a file a symlink in submitted/ points at.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker
import pytest

from portbinding.grading.course import Course, nbgrader_env, run_nbgrader
from portbinding.probe import wait_until
from tests.support.checkout import REPO
from tests.support.staging import Staged, bare_env, run_as

PORTBINDING = str(Path(sys.executable).parent / "portbinding")
EX01 = "ex01-unreachable-notebook"


def _ex01_course(root: Path, submissions: dict[str, bytes | None]) -> Course:
    """ex01 at ``root`` with these submissions (None: the reference solution)."""
    root.mkdir()
    (root / "nbgrader_config.py").write_bytes((REPO / "grader" / "nbgrader_config.py").read_bytes())
    (root / "source").mkdir()
    subprocess.run(["cp", "-r", str(REPO / "grader" / "source" / EX01), str(root / "source")], check=True)
    run_nbgrader(["generate_assignment", EX01, "--force"], cwd=root)
    course = Course(root)
    for student, content in submissions.items():
        folder = course.submitted(student, EX01)
        folder.mkdir(parents=True)
        reference = course.source(EX01) / f"{EX01}.ipynb"
        (folder / f"{EX01}.ipynb").write_bytes(content or reference.read_bytes())
    return course


@pytest.fixture(scope="module")
def limited(grading_host: Any, srv_base: Path) -> tuple[Course, dict[str, Any]]:
    """ex01 graded with a 4 s limit per submission: a reference that runs out of time, and a broken file."""
    course = _ex01_course(srv_base / "limits", {"slow": None, "broken": b'{"cells": [ this is not json'})
    root = course.root
    result = subprocess.run(
        [PORTBINDING, "grade", EX01, "--time-limit", "4", "--course", str(root), "--json"],
        env=nbgrader_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    run_nbgrader(["generate_feedback", EX01, "--force"], cwd=root)
    return course, {o["student"]: o for o in json.loads(result.stdout)["submissions"]}


def test_a_submission_over_its_wall_time_is_stopped_and_graded_zero(
    limited: tuple[Course, dict[str, Any]],
) -> None:
    """Killed at --time-limit: zero, the reason in the feedback, and its sandbox and containers gone."""
    course, outcomes = limited
    assert outcomes["slow"]["score"] == 0.0 and outcomes["slow"]["status"] == "zero", outcomes["slow"]
    feedback = (course.root / "feedback" / "slow" / EX01 / f"{EX01}.html").read_text()
    assert "took longer than 4 s" in feedback
    assert "BEGIN SOLUTION" not in feedback, "the zero record must show the released notebook, not the source"
    left = sandboxes_of(outcomes["slow"]["session"])
    assert outcomes["slow"]["session"] and not left, f"sandboxes left behind: {left}"


def sandboxes_of(session: str) -> list[str]:
    """Sandbox folders of ``session`` still on the machine (other runs' may come and go meanwhile)."""
    found = []
    for folder in Path("/var/lib/portbinding-grading").iterdir():
        with contextlib.suppress(OSError):
            if (folder / "session").read_text() == session:
                found.append(folder.name)
    return found


def test_a_grading_stopped_by_sigterm_removes_what_it_started_and_records_nothing(
    grading_host: docker.DockerClient, srv_base: Path
) -> None:
    """SIGTERM (a stopped service, a killed pool process) mid-check: the run ends now, as after
    Ctrl-C -- its sandbox and containers removed, no grade and no record written."""
    course = _ex01_course(srv_base / "sigterm", {"stopped": None})
    grading = subprocess.Popen(
        [PORTBINDING, "grade", EX01, "--time-limit", "240", "--course", str(course.root), "--json"],
        env=nbgrader_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    mine = {"label": ["portbinding.owner=grader", f"portbinding.run={os.environ['PORTBINDING_RUN_ID']}"]}
    started: list[Any] = []

    def a_container_started() -> bool:
        started[:] = grading_host.containers.list(all=True, sparse=True, filters=mine)
        return bool(started)

    try:
        assert wait_until(a_container_started, timeout=180), "the grading never started a container"
        session = started[0].attrs["Labels"]["portbinding.session"]
        grading.send_signal(signal.SIGTERM)
        _, err = grading.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            grading.kill()
    assert grading.returncode == 130 and "Interrupted." in err, f"exit {grading.returncode}:\n{err[-2000:]}"
    left = grading_host.containers.list(all=True, filters={"label": f"portbinding.session={session}"})
    assert not left, f"containers left behind: {[c.name for c in left]}"
    assert not sandboxes_of(session), f"sandboxes left behind: {sandboxes_of(session)}"
    assert not (course.records(EX01) / "stopped.json").exists(), "an interrupted grading wrote a record"
    copied = list(course.autograded("stopped", EX01).glob("*.ipynb"))
    assert not copied, f"an interrupted grading was copied back: {copied}"


def test_an_unreadable_notebook_is_graded_zero_with_the_reason(
    limited: tuple[Course, dict[str, Any]],
) -> None:
    """A file that is not a notebook never reaches nbgrader: zero, saying why."""
    course, outcomes = limited
    assert outcomes["broken"]["score"] == 0.0, outcomes["broken"]
    assert "not a readable notebook" in outcomes["broken"]["notes"][0]
    assert (course.root / "feedback" / "broken" / EX01 / f"{EX01}.html").is_file()


def test_grading_without_root_is_refused_with_what_to_do(grading_host: Any, staged: Staged) -> None:
    """As an ordinary user, portbinding grade refuses and says a root grading machine is needed."""
    # The staged copy: the checkout and its venv may be where uid 65534 cannot read them.
    env = bare_env(PATH=f"{staged.venv / 'bin'}:/usr/bin:/bin")
    command = [*staged.cli(), "grade", EX01, "--course", str(staged.checkout / "grader")]
    result = run_as(command, env, user="65534", timeout=120)
    assert result.returncode == 4, (result.returncode, result.stderr)
    assert "needs root" in result.stderr and "dedicated grading machine" in result.stderr, result.stderr
    assert os.geteuid() == 0


NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}  # the engine gone, for the grader's door
CAUSE_ONLY = 'cause = "loopback_only"'  # one point, without a container check


def _submit(course: Course, student: str, cause_cell: str, **links: str) -> Path:
    """A released ex01 notebook with only its cause cell answered; ``links``: name -> symlink target."""
    import nbformat

    folder = course.submitted(student, EX01)
    folder.mkdir(parents=True)
    notebook = nbformat.read(course.release(EX01) / f"{EX01}.ipynb", as_version=4)  # type: ignore[no-untyped-call]
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "ex01-cause-answer":
            cell.source = cause_cell
    nbformat.write(notebook, folder / f"{EX01}.ipynb")  # type: ignore[no-untyped-call]
    for name, target in links.items():
        (folder / name).symlink_to(target)
    return folder


def _grade(course: Course, student: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PORTBINDING, "grade", EX01, "--student", student, "--course", str(course.root), "--json"],
        env={**nbgrader_env(), **env}, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def _score(course: Course, student: str) -> float:
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url) as gb:
        return float(gb.find_submission(EX01, student).score)


@pytest.fixture(scope="module")
def regraded(limited: tuple[Course, dict[str, Any]]) -> dict[str, Any]:
    """A submission graded once (1 point), then again while the grader has no engine: both ways."""
    course, _ = limited
    _submit(course, "faulted", CAUSE_ONLY)
    first = _grade(course, "faulted", {})
    assert first.returncode == 0, first.stderr[-2000:]
    notebook = course.autograded("faulted", EX01) / f"{EX01}.ipynb"
    before = (_score(course, "faulted"), notebook.read_bytes())
    again = _grade(course, "faulted", NO_ENGINE)
    after = (_score(course, "faulted"), notebook.read_bytes() if notebook.exists() else b"")
    plain = run_nbgrader_raw(course, ["autograde", EX01, "--student", "faulted", "--force"], NO_ENGINE)
    return {"first": json.loads(first.stdout)["submissions"][0], "again": again, "before": before,
            "after": after, "plain": plain, "plain_score": _score(course, "faulted")}  # fmt: skip


def run_nbgrader_raw(
    course: Course, args: list[str], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """nbgrader as an instructor types it, in the course folder; its result, whatever the exit code."""
    nbgrader = str(Path(sys.executable).parent / "nbgrader")
    return subprocess.run([nbgrader, *args], cwd=course.root, env={**nbgrader_env(), **env},
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip


def test_a_grader_fault_is_not_gradable_regrade_never_the_students_zero(regraded: dict[str, Any]) -> None:
    """The engine gone for the door: status regrade, exit 1, a message for the instructor, the grade kept."""
    assert regraded["first"]["score"] == 1.0, regraded["first"]
    again = regraded["again"]
    assert again.returncode == 1, (again.returncode, again.stdout[-2000:], again.stderr[-2000:])
    outcome = json.loads(again.stdout)["submissions"][0]
    assert outcome["status"] == "regrade", outcome
    assert "Not gradable -- regrade" in outcome["notes"][0] and "engine" in outcome["notes"][0], outcome
    assert regraded["after"] == regraded["before"], "the gradebook or the autograded notebook changed"


def test_plain_nbgrader_autograde_fails_loudly_on_a_grader_fault_and_records_no_zero(
    regraded: dict[str, Any],
) -> None:
    """`nbgrader autograde` with the engine gone: a non-zero exit naming the regrade, the grade left alone."""
    plain = regraded["plain"]
    assert plain.returncode != 0, plain.stdout[-2000:]
    assert "Not gradable -- regrade" in plain.stdout + plain.stderr, (plain.stdout + plain.stderr)[-3000:]
    assert regraded["plain_score"] == 1.0, "nbgrader recorded a grade for the grader's own failure"


def test_plain_nbgrader_autograde_never_hands_the_kernel_a_symlinked_file(
    limited: tuple[Course, dict[str, Any]], srv_base: Path
) -> None:
    """A symlink in submitted/ to root's file: nbgrader copies it (as root) into autograded/, the kernel
    gets nothing of it."""
    course, _ = limited
    secret = srv_base / "limits-secret.txt"
    secret.write_text("PBL-PLAIN-SECRET\n")
    os.chmod(secret, 0o600)
    _submit(course, "linked", 'print("notes:", open("notes.txt").read())', **{"notes.txt": str(secret)})
    result = run_nbgrader_raw(course, ["autograde", EX01, "--student", "linked", "--force"], {})
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    graded = (course.autograded("linked", EX01) / f"{EX01}.ipynb").read_text()
    assert "PBL-PLAIN-SECRET" not in graded, "the kernel read the file the symlink pointed at"
    assert "No such file or directory" in graded, graded[-3000:]
