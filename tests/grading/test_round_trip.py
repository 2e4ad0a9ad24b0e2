"""The full round trip in a temporary course on the real engine (see ``graded_course``).

generate_assignment -> submissions (reference, typical wrong answers, every hostile one) ->
``portbinding grade --workers 2`` -> generate_feedback -> ``portbinding report``.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from nbgrader.api import Gradebook

from . import attacks

PORTBINDING = str(Path(sys.executable).parent / "portbinding")
EX01, EX02, EX03 = "ex01-unreachable-notebook", "ex02-port-mapping", "ex03-twelve-factor-api"
EX04 = "ex04-compose-two-services"
HOSTILE = attacks.names()  # one per file in submissions/


def feedback(trip: Any, student: str, assignment: str) -> str:
    """The text of a submission's feedback HTML, tags removed, whitespace collapsed."""
    raw = (trip.course.root / "feedback" / student / assignment / f"{assignment}.html").read_text()
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", raw)).split())


@pytest.mark.parametrize("assignment", [EX01, EX02, EX03, EX04])
def test_reference_solutions_get_full_marks(graded_course: Any, assignment: str) -> None:
    """The instructors' own solutions, submitted as they are, earn every point."""
    outcome = graded_course.outcomes[assignment]["alice"]
    assert outcome["status"] == "graded", f"{outcome['status']}: {outcome['notes']}"
    assert outcome["score"] == outcome["max_score"] > 0, outcome
    assert "Passed:" in feedback(graded_course, "alice", assignment)


@pytest.mark.parametrize(
    ("assignment", "expected_score", "phrases"),
    [
        # cause wrong, run line still loopback, config line '0.0.0.0' (a correct variant) passes
        (EX01, 2.0, ("listens on 127.0.0.1 inside the container", "Next step:", "--ServerApp.ip=0.0.0.0")),
        # sides swapped, -p 8888:80, 8888 busy, 0.0.0.0 exposed to the network; -P + docker port passes
        (EX02, 2.0, ("nothing listens", "port is already allocated", "reachable from this machine only",
                     "-p HOST:CONTAINER")),
        # app on 127.0.0.1:8000, wrong first look, crash line without MODEL_PATH
        (EX03, 1.0, ("127.0.0.1", "MODEL_PATH", "docker logs")),
        # ex04: localhost kept (diagnosed from the grader's run), the database published, started-only
        (EX04, 1.0, ("localhost is api itself", "DATABASE_URL=redis://db:6379/0", "published nowhere",
                     "service_healthy", "483050")),
    ],
)  # fmt: skip
def test_typical_wrong_answers_get_partial_marks_and_helpful_feedback(
    graded_course: Any, assignment: str, expected_score: float, phrases: tuple[str, ...]
) -> None:
    """Wrong answers lose their points, and the feedback says what was expected, seen, and what to do."""
    outcome = graded_course.outcomes[assignment]["bob"]
    assert outcome["status"] == "graded", outcome
    assert outcome["score"] == expected_score, outcome
    text = feedback(graded_course, "bob", assignment)
    missing = [phrase for phrase in phrases if phrase not in text]
    assert not missing, f"feedback lacks {missing}:\n{text[:3000]}"


def hostile_of(trip: Any, assignment: str) -> list[str]:
    """The hostile students of ``assignment`` in this run."""
    return [a.student for a in trip.hostile if a.assignment == assignment]


@pytest.mark.parametrize("student", HOSTILE)
def test_hostile_submission_is_graded_as_its_file_expects(graded_course: Any, student: str) -> None:
    """Each attack gets the score its file names, and the feedback says (and keeps back) what it lists."""
    attack = next(a for a in graded_course.hostile if a.student == student)
    expect = attack.expect
    outcome = graded_course.outcomes[attack.assignment][student]
    if expect.full:
        assert outcome["score"] == outcome["max_score"] > 0, f"{attack.about}\n{outcome}"
    else:
        assert outcome["score"] == expect.score, f"{attack.about}\n{outcome}"
    if expect.status:
        assert outcome["status"] == expect.status, f"{attack.about}\n{outcome}"
    raw = graded_course.course.root / "feedback" / student / attack.assignment / f"{attack.assignment}.html"
    text = feedback(graded_course, student, attack.assignment) if raw.exists() else ""
    shown = text + "\n" + (raw.read_text() if raw.exists() else "")
    if expect.feedback_any:
        assert any(p in text for p in expect.feedback_any), (
            f"none of {expect.feedback_any} in:\n{text[:3000]}"
        )
    missing = [p for p in expect.feedback_all if p not in text]
    assert not missing, f"feedback lacks {missing}:\n{text[:3000]}"
    leaked = [p for p in expect.feedback_none if p in shown]
    assert not leaked, f"{attack.about}: the feedback shows {leaked}:\n{text[:3000]}"
    if expect.record_max_bytes:
        size = (graded_course.course.records(attack.assignment) / f"{student}.json").stat().st_size
        assert size <= expect.record_max_bytes, f"{attack.about}: its grading record is {size} bytes"
    if expect.overlaps:
        window = door_window(graded_course, student, attack.assignment)
        theirs = door_window(graded_course, expect.overlaps, attack.assignment)
        assert window and theirs and window[0] < theirs[1] and theirs[0] < window[1], (
            f"{student} (door busy {window}) and {expect.overlaps} (door busy {theirs}) were not graded "
            "at the same time, so this run did not test the attack"
        )


def door_window(trip: Any, student: str, assignment: str) -> tuple[float, float] | None:
    """When a submission's door saw its first and last request (monotonic clock, from its record)."""
    record = json.loads((trip.course.records(assignment) / f"{student}.json").read_text())
    times = [(c["started"], c["ended"]) for nb in record["notebooks"] for c in nb["checks"]]
    return (min(t[0] for t in times), max(t[1] for t in times)) if times else None


def test_hostile_submissions_do_not_disturb_the_others_in_the_same_run(graded_course: Any) -> None:
    """In the same two-worker run as every attack, the reference and the wrong answers score as usual."""
    run = graded_course.outcomes[EX01]
    assert set(hostile_of(graded_course, EX01)) <= set(run), sorted(run)
    assert (run["alice"]["score"], run["bob"]["score"]) == (5.0, 2.0), (run["alice"], run["bob"])


def test_the_grading_machine_is_untouched(graded_course: Any) -> None:
    """Files outside the submission, /tmp, the engine and the process table are as they were."""
    before, after = graded_course.before, graded_course.after
    assert after.sentinel == before.sentinel, "a submission changed a file outside its folder"
    assert not after.injected, f"shell injection created {after.injected}"
    with Gradebook(graded_course.course.db_url) as gb:  # still a database, with every submission
        assert len(gb.find_assignment(EX01).submissions) == 2 + len(hostile_of(graded_course, EX01))


def test_nothing_is_left_running(graded_course: Any) -> None:
    """No container, image, sandbox, cgroup or throwaway-uid process survives the grading."""
    before, after = graded_course.before, graded_course.after
    new = after.containers - before.containers
    assert not new, f"containers left behind: {new}"
    # Other runs on this machine grade too: only this run's sessions count, and what theirs hold.
    ours = {o["session"] for run in graded_course.outcomes.values() for o in run.values()}
    others = {name for name, session in after.sandboxes.items() if session not in ours}
    left = {name: session for name, session in after.sandboxes.items() if session in ours}
    assert not left, f"sandbox folders left behind: {left}"
    cgroups = after.cgroups - before.cgroups - others
    assert not cgroups, f"cgroups left behind: {cgroups}"
    processes = {pid: name for pid, name in after.sandbox_processes.items() if name not in others}
    assert not processes, f"sandboxed processes still running: {processes}"
    busy = {after.sandbox_uids.get(name) for name in others}  # uids other runs' sandboxes hold now
    grown = {uid: n for uid, n in after.keys.items() if n > before.keys.get(uid, 0) and uid not in busy}
    assert not grown, f"kernel keys of grading uids outlived their sandboxes: {grown} (before: {before.keys})"
    import docker

    client = docker.from_env(timeout=30)
    run = f"portbinding.run={os.environ['PORTBINDING_RUN_ID']}"  # other runs build theirs meanwhile
    leftovers = client.images.list(filters={"label": ["portbinding.grading", run]})
    assert not leftovers, [image.tags for image in leftovers]


def test_the_engine_socket_is_never_reached_from_learner_code(graded_course: Any) -> None:
    """Every container created during grading was the door's: labelled, never the attackers' own."""
    created = [e.get("Actor", {}).get("Attributes", {}) for e in graded_course.engine_events]
    hostile = [
        a.get("name") for a in created if str(a.get("name", "")).startswith(("pbl-hostile", "keep-me"))
    ]
    assert not hostile, f"learner code created containers directly: {hostile}"
    # This run's only: an unlabelled container cannot be told from another run's (other helpers'
    # lessons and tests start pbl-* containers on the same engine); learner-made ones are the
    # hostile names above, and the sandbox reaches no engine to make any.
    run = os.environ["PORTBINDING_RUN_ID"]
    runs = [
        a for a in created if str(a.get("name", "")).startswith("pbl-") and a.get("portbinding.run") == run
    ]
    assert runs, "the door started no containers at all?"
    # Every container that ran an answer is the door's: labelled with a grading session.
    door = [
        a.get("portbinding.owner") == "grader" and a.get("portbinding.session", "").startswith("g")
        for a in runs
    ]
    strays = [a for a, by_door in zip(runs, door, strict=True) if not by_door]
    assert not strays, f"containers of this run not started by the door: {strays}"


def test_report_summarises_the_class(graded_course: Any) -> None:
    """portbinding report: pass rate per question, common causes, rule violations, and a plot."""
    command = [PORTBINDING, "report", EX01, "--course", str(graded_course.course.root), "--json"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    report = json.loads(result.stdout)
    rates = {q["question"]: q["pass_rate"] for q in report["questions"]}
    submissions = 2 + len(hostile_of(graded_course, EX01))
    assert report["submissions"] == submissions
    assert rates["ex01-config-line"] == pytest.approx(2 / submissions, abs=0.01), rates
    causes = dict((cause, count) for cause, count in report["causes"])
    assert causes.get("loopback_only", 0) >= 1 and causes.get("refused", 0) >= 3, causes
    violations = dict((code, count) for code, count in report["violations"])
    assert {"engine_access", "processes", "timeout"} <= set(violations), violations
    assert Path(report["plot"]).stat().st_size > 10_000
