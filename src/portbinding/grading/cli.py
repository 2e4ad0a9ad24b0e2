"""The grading subcommands of ``portbinding``: grade, report, exercises, course init.

``portbinding.cli`` adds them with ``add_grading_commands(commands, command)``, where
``command(name, handler, help)`` is its helper that creates a subparser with ``--json`` and
the handler. Handlers return the CLI's exit codes (0 ok, 1 a problem found, 2 bad input) and
raise PortBindingError subclasses for everything else, which ``portbinding.cli`` reports.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from portbinding.grading.course import (
    Course,
    exercise_differences,
    hand_over,
    lay_out_course,
    write_exercises,
)

Handler = Callable[[argparse.Namespace], int]
CommandFactory = Callable[[str, Handler, str], argparse.ArgumentParser]

EXIT_OK, EXIT_PROBLEM = 0, 1
BROKER_ENV = "PORTBINDING_BROKER"


def add_grading_commands(subparsers: Any, command: CommandFactory) -> None:
    """Add ``grade``, ``report``, ``exercises`` and ``course`` through the CLI's ``command`` helper."""
    del subparsers  # the helper already knows where to add them
    grade = command("grade", _grade, "Autograde every submission of an assignment in the grading sandbox.")
    grade.add_argument("assignment")
    grade.add_argument("--workers", type=int, default=1, help="submissions graded at once (default 1)")
    grade.add_argument(
        "--student",
        action="append",
        dest="students",
        metavar="ID",
        help="grade only this student (repeat for more)",
    )
    grade.add_argument(
        "--course",
        type=Path,
        default=None,
        help="the nbgrader course folder (default: this folder if it is one, else grader/)",
    )
    grade.add_argument(
        "--time-limit",
        type=float,
        default=900.0,
        help="seconds one submission may take in all before it is stopped and graded zero",
    )
    grade.add_argument(
        "--cell-timeout",
        type=int,
        default=None,
        help="override nbgrader's per-cell timeout (grader/nbgrader_config.py sets 180 s)",
    )
    grade.add_argument(
        "--backend",
        choices=["local", "celery"],
        default="local",
        help="local: a pool on this machine (default); celery: one task per submission on the workers "
        "behind --broker (portbinding.grading.distributed)",
    )
    grade.add_argument(
        "--broker",
        default=os.environ.get(BROKER_ENV, ""),
        help=f"with --backend celery: the Redis URL of the grading queue (default: ${BROKER_ENV})",
    )

    worker = command(
        "grade-worker",
        _grade_worker,
        "Grade submissions from the queue, one at a time, with this machine's engine (--backend celery).",
    )
    worker.add_argument("--broker", default=os.environ.get(BROKER_ENV, ""), help=f"default: ${BROKER_ENV}")
    worker.add_argument("--name", default=None, help="how results name this worker (default: the host name)")
    worker.add_argument(
        "--visibility-timeout",
        type=float,
        default=900.0 + 120.0,
        help="seconds before a task a vanished worker held goes to another (longer than any submission)",
    )
    worker.add_argument(
        "--max-tasks",
        type=int,
        default=None,
        help="stop after grading this many submissions (a Kubernetes Job: 1)",
    )

    report = command("report", _report, "Class report: pass rate per question, common causes, and a plot.")
    report.add_argument("assignment")
    report.add_argument("--course", type=Path, default=None)
    report.add_argument(
        "--plot",
        type=Path,
        default=None,
        help="where to save the plot (default: COURSE/reports/ASSIGNMENT/report.png)",
    )
    report.add_argument(
        "--roster",
        type=Path,
        default=None,
        help="a roster CSV (id,name,role) for the students' names in the LMS export",
    )

    exercises = command(
        "exercises",
        _exercises,
        "Write nbgrader's student versions of grader/source into exercises/ (or --check them).",
    )
    exercises.add_argument("--check", action="store_true", help="only report differences (exit 1 if any)")
    exercises.add_argument("--course", type=Path, default=None)
    exercises.add_argument(
        "--into", type=Path, default=None, help="where to write them (default: exercises/ beside the course)"
    )

    course = command(
        "course",
        _course,
        "Lay out the course (grader/, exercises/, notebooks/) in a folder: `portbinding course init DIR`; "
        "`portbinding course hand-over DIR` gives what root wrote in the course folder DIR to its owner.",
    )
    course.add_argument("action", choices=["init", "hand-over"])
    course.add_argument("folder", type=Path)


def _grade(args: argparse.Namespace) -> int:
    import warnings

    from portbinding.grading.grade import GradeOptions, Outcome, grade_assignment

    # nbgrader's update_or_create_submission trips SQLAlchemy's autoflush warnings; they are
    # harmless and would only drown the progress bar.
    warnings.filterwarnings("ignore", message="Object of type <Submitted", module="nbgrader")

    course = Course.find(args.course)
    students = args.students or course.students(args.assignment)
    bar: Any = None
    if not args.json:
        from tqdm import tqdm

        bar = tqdm(
            total=len(students), desc=args.assignment, unit="submission", file=sys.stderr, dynamic_ncols=True
        )

    def progress(outcome: Outcome) -> None:
        if bar is not None:
            bar.set_postfix_str(f"{outcome.student}: {outcome.score:g}/{outcome.max_score:g}"[:40])
            bar.update(1)

    options = GradeOptions(
        workers=args.workers, time_limit_s=args.time_limit, cell_timeout_s=args.cell_timeout
    )
    try:
        if args.backend == "celery":
            from portbinding.grading.distributed import ClusterError, ClusterOptions, grade_distributed

            if not args.broker:
                raise ClusterError(
                    "--backend celery needs the grading queue's address.",
                    hint=f"pass --broker redis://HOST:6379/0 (or set {BROKER_ENV})",
                )
            outcomes = grade_distributed(
                course,
                args.assignment,
                cluster=ClusterOptions(args.broker),
                students=students,
                options=options,
                progress=progress,
            )
        else:
            outcomes = grade_assignment(
                course, args.assignment, students=students, options=options, progress=progress
            )
    finally:
        if bar is not None:
            bar.close()
    hand_over(course.root)  # the instructor's account owns what grading wrote (see grader/README.md)
    # The grader's own failures: nothing was recorded for these, and they must be graded again.
    regrade = [o.student for o in outcomes if o.status == "regrade"]
    if args.json:
        print(
            json.dumps(
                {"assignment": args.assignment, "submissions": [o.to_dict() for o in outcomes]}, indent=2
            )
        )
        return EXIT_PROBLEM if regrade else EXIT_OK
    width = max([len(o.student) for o in outcomes] + [7])
    print(f"{'student':{width}}  {'score':>11}  {'status':7}  {'seconds':>7}  notes")
    for o in outcomes:
        note = o.notes[0][:90] if o.notes else ""
        print(
            f"{o.student:{width}}  {o.score:>5g} / {o.max_score:<3g}  {o.status:7}  {o.seconds:>7.1f}  {note}"
        )
    print(
        f"\nGraded {len(outcomes) - len(regrade)} submission(s). Next: `nbgrader generate_feedback "
        f"{args.assignment}` in {course.root}, and `portbinding report {args.assignment}`."
    )
    if regrade:
        print(
            f"Not gradable -- regrade: {', '.join(regrade)}. The grader failed on these (see the notes: not "
            "the students' doing); their previous grades were left as they were. Fix the grading machine, "
            f"then run `portbinding grade {args.assignment} --student ID` for each.",
            file=sys.stderr,
        )
        return EXIT_PROBLEM
    return EXIT_OK


def _grade_worker(args: argparse.Namespace) -> int:
    import socket

    from portbinding.grading.distributed import ClusterError
    from portbinding.grading.sandbox import require_root
    from portbinding.grading.worker import run_worker

    if not args.broker:
        raise ClusterError(
            "A grading worker needs the queue's address.",
            hint=f"pass --broker redis://HOST:6379/0 (or set {BROKER_ENV})",
        )
    require_root()
    return run_worker(
        args.broker,
        name=args.name or socket.gethostname(),
        visibility_timeout_s=args.visibility_timeout,
        max_tasks=args.max_tasks,
    )


def _report(args: argparse.Namespace) -> int:
    from portbinding.grading.lms import write_lms_csv, write_nbgrader_export
    from portbinding.grading.report import build_report, plot

    course = Course.find(args.course)
    report = build_report(course, args.assignment)
    path = plot(report, args.plot or course.records(args.assignment) / "report.png")
    names = {}
    if args.roster is not None:
        from portbinding.hub.roster import read_roster

        names = {member.id: member.name for member in read_roster(args.roster) if not member.is_instructor}
    folder = course.records(args.assignment)
    lms = write_lms_csv(course, args.assignment, folder / "lms-grades.csv", names=names)
    exported = write_nbgrader_export(course, args.assignment, folder / "nbgrader-grades.csv")
    if args.json:
        print(
            json.dumps(
                {**report.to_dict(), "plot": str(path), "lms_csv": str(lms), "nbgrader_csv": str(exported)},
                indent=2,
            )
        )
    else:
        print(
            report.text()
            + f"\n\nPlot: {path}\nLMS import (one row per student): {lms}\nnbgrader export: {exported}"
        )
    return EXIT_OK


def _exercises(args: argparse.Namespace) -> int:
    course = Course.find(args.course)
    args.into = args.into or course.exercises
    if args.check:
        problems = exercise_differences(course, args.into)
        if args.json:
            print(json.dumps({"in_sync": not problems, "problems": problems}, indent=2))
        else:
            print("\n".join(problems) if problems else f"{args.into} matches nbgrader's student versions.")
        return EXIT_PROBLEM if problems else EXIT_OK
    written = write_exercises(course, args.into)
    if args.json:
        print(json.dumps({"written": [str(p) for p in written]}, indent=2))
    else:
        print("\n".join(f"wrote {p}" for p in written))
    return EXIT_OK


def _course(args: argparse.Namespace) -> int:
    target = args.folder.resolve()
    if args.action == "hand-over":
        changed = hand_over(target)
        if args.json:
            print(json.dumps({"course": str(target), "handed_over": changed}, indent=2))
        else:
            print(f"{changed} path(s) in {target} handed over to its owner (uid {target.stat().st_uid}).")
        return EXIT_OK
    written = lay_out_course(target)
    if args.json:
        print(json.dumps({"course": str(target / "grader"), "written": [str(p) for p in written]}, indent=2))
    else:
        print("\n".join(f"wrote {p}" for p in written))
        print(
            f"\nThe course is in {target}. Lessons: `jupyter lab {target / 'notebooks'}`. Grading: "
            f"`cd {target / 'grader'}`, then the instructor workflow in its README.md."
        )
    return EXIT_OK
