"""``portbinding hub init|start|grade|down``: a class's JupyterHub on one machine (as root).

portbinding hub init --roster class.csv [--name class] [--ip 0.0.0.0] [--port 8000]
portbinding hub start [--name class]          # JupyterHub in the foreground
portbinding hub grade ex01-unreachable-notebook [--workers 2]   # after the instructor collects
portbinding hub down [--delete-users]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from portbinding.grading.cli import CommandFactory
from portbinding.hub.config import STATE_BASE, HubSettings

EXIT_OK = 0


def add_hub_commands(command: CommandFactory) -> None:
    """Add ``hub`` through the CLI's ``command`` helper."""
    hub = command("hub", _hub, "Run a class on one machine: JupyterHub, an engine per student, grading.")
    hub.add_argument("action", choices=["init", "start", "grade", "down"])
    hub.add_argument("assignment", nargs="?", help="for `grade`: the assignment to grade")
    hub.add_argument(
        "--name", default="class", help="the hub's name (its state: /var/lib/portbinding-hub/NAME)"
    )
    hub.add_argument("--roster", type=Path, help="for `init`: the CSV with id,name,role")
    hub.add_argument("--ip", default="127.0.0.1", help="for `init`: where the hub listens")
    hub.add_argument("--port", type=int, default=8000, help="for `init`: the hub's port")
    hub.add_argument("--exchange", type=Path, default=None, help="for `init`: nbgrader's exchange folder")
    hub.add_argument(
        "--images",
        nargs="*",
        default=None,
        help="for `init`: images each student gets (default: the lessons')",
    )
    hub.add_argument(
        "--memory", type=float, default=2.0, help="for `init`: GiB per student, containers included"
    )
    hub.add_argument(
        "--pids", type=int, default=512, help="for `init`: processes per student, containers included"
    )
    hub.add_argument("--workers", type=int, default=2, help="for `grade`: submissions graded at once")
    hub.add_argument("--delete-users", action="store_true", help="for `down`: also delete the Unix accounts")


def settings_for(name: str, base: Path = STATE_BASE) -> HubSettings:
    """The settings `portbinding hub init` saved for the hub ``name``."""
    from portbinding.hub.classroom import HubSetupError

    path = base / name / "hub.json"
    if not path.exists():
        raise HubSetupError(
            f"There is no hub called {name!r} (no {path}).",
            hint=f"set it up first: `portbinding hub init --roster CSV --name {name}`",
        )
    return HubSettings.load(path)


def _hub(args: argparse.Namespace) -> int:
    from portbinding.hub.classroom import HubSetupError

    if args.action == "init":
        return _init(args)
    settings = settings_for(args.name)
    if args.action == "start":
        return start(settings)
    if args.action == "grade":
        if not args.assignment:
            raise HubSetupError("`portbinding hub grade` needs the assignment to grade.")
        return _grade(settings, args)
    from portbinding.hub.classroom import tear_down

    tear_down(settings, delete_users=args.delete_users)
    print(f"The hub {settings.name!r} is down" + (" and its accounts deleted." if args.delete_users else "."))
    return EXIT_OK


def _init(args: argparse.Namespace) -> int:
    from portbinding.hub.classroom import HubSetupError, handout_path, set_up
    from portbinding.hub.engines import lesson_references

    if args.roster is None:
        raise HubSetupError("`portbinding hub init` needs --roster CSV (columns id,name,role).")
    settings = HubSettings(
        name=args.name,
        ip=args.ip,
        port=args.port,
        roster=str(args.roster.resolve()),
        images=args.images if args.images is not None else lesson_references(),
        memory_bytes=int(args.memory * 2**30),
        pids=args.pids,
    )
    if args.exchange is not None:
        settings.exchange = str(args.exchange.resolve())
    issued = set_up(settings, progress=lambda message: print(message, file=sys.stderr))
    payload: dict[str, Any] = {
        "hub": settings.name,
        "url": settings.url,
        "passwords": str(handout_path(settings)),
    }
    if args.json:
        print(json.dumps({**payload, "issued": issued}, indent=2))
    else:
        print(
            f"The hub {settings.name!r} is set up. Start it: `portbinding hub start --name {settings.name}`, "
            f"then open {settings.url}. New passwords: {handout_path(settings)} (hand out, then delete)."
        )
    return EXIT_OK


def start(settings: HubSettings) -> int:
    """Run JupyterHub for ``settings`` in the foreground (until interrupted)."""
    command = [
        str(Path(settings.venv) / "bin" / "jupyterhub"),
        "-f",
        str(settings.state / "jupyterhub_config.py"),
    ]
    env = {**os.environ, "PATH": f"{Path(settings.venv) / 'bin'}:{os.environ.get('PATH', '')}"}
    print(
        f"JupyterHub for {settings.name!r} on {settings.url} (Ctrl-C stops it and every server).",
        file=sys.stderr,
    )
    # JupyterHub in this process's place: Ctrl-C and SIGTERM reach it alone, and it stops every
    # server before it exits (a parent waiting on it would kill it mid-cleanup on an interrupt).
    sys.stderr.flush()
    os.chdir(settings.state)
    os.execvpe(command[0], command, env)


def _grade(settings: HubSettings, args: argparse.Namespace) -> int:
    """``portbinding grade`` (root: the sandbox needs it) on the instructor's course, given back to them."""
    from portbinding.grading.course import Course, hand_over
    from portbinding.grading.grade import GradeOptions, grade_assignment
    from portbinding.hub.classroom import course_root
    from portbinding.hub.roster import read_roster

    instructors = [m for m in read_roster(Path(settings.roster)) if m.is_instructor]
    outcomes = []
    for member in instructors:
        course = Course(course_root(member))
        if not course.students(args.assignment):
            continue
        outcomes += grade_assignment(course, args.assignment, options=GradeOptions(workers=args.workers))
        hand_over(course.root)  # walked by file descriptor: a link the instructor swaps in leads nowhere
    if args.json:
        print(json.dumps({"submissions": [o.to_dict() for o in outcomes]}, indent=2))
    else:
        for o in outcomes:
            print(f"{o.student:20} {o.score:>5g} / {o.max_score:<3g} {o.status}")
    return EXIT_OK
