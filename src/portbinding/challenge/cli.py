"""``portbinding challenge …`` and ``portbinding progress``: the challenge on the command line.

    portbinding challenge new [--seed N] [--cause C] [--image I]   start one; prints what you are told
    portbinding challenge look ID RUNG                             one rung: the command and its output
    portbinding challenge commit ID --layer L --cause C            your call, before any hint
    portbinding challenge hint ID                                  the next hint (1 rung, 2 evidence, 3 fix)
    portbinding challenge check ID [--watch [--timeout S]]         solved? (exit 0 yes, 1 not yet)
    portbinding challenge end ID [--remove-mine]                   remove what it started
    portbinding challenge list [--all]                             your challenges
    portbinding progress FOLDER [--plot PNG]                       a class's records, as a report

Registered on the main parser by one call in ``portbinding.cli`` (``add_challenge_commands``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from portbinding.challenge.ladder import CAUSE_WORDS, CHALLENGE_CAUSES, LAYERS, RUNGS
from portbinding.challenge.services import SERVICE_NAMES

CommandMaker = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]
EXIT_OK, EXIT_PROBLEM = 0, 1
DEFAULT_WATCH_S = 600.0


def add_challenge_commands(commands: Any, command: CommandMaker) -> None:
    """Add ``challenge`` (with its own sub-commands) and ``progress`` to the main parser."""
    challenge = commands.add_parser(
        "challenge",
        help="Diagnose and fix a broken container drawn from a seed.",
        description="Diagnose and fix a broken container drawn from a seed: look rung by rung, commit to a "
        "layer and a cause, ask for hints, fix it any way you like.",
    )
    steps = challenge.add_subparsers(dest="step", required=True)

    def step(name: str, handler: Callable[[argparse.Namespace], int], text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = steps.add_parser(name, help=text, description=text)
        sub.add_argument("--json", action="store_true", help="print JSON with stable keys")
        sub.set_defaults(handler=handler)
        return sub

    new = step(
        "new", _new, "Start a challenge; prints the URL to make reachable and the container to look at."
    )
    new.add_argument("--seed", type=int, default=None, help="draw this challenge (default: a random one)")
    new.add_argument(
        "--cause", choices=CHALLENGE_CAUSES, default=None, help="only challenges with this cause"
    )
    new.add_argument("--image", choices=SERVICE_NAMES, default=None, help="only challenges on this image")

    rungs = ", ".join(f"{r.layer} ({r.title.lower()})" for r in RUNGS)
    look = step("look", _look, "Look at one rung of the ladder: the command a learner types, and its output.")
    look.add_argument("id")
    look.add_argument("rung", choices=LAYERS, help=rungs)

    commit = step("commit", _commit, "Commit to the failing layer and the cause (before any hint).")
    commit.add_argument("id")
    commit.add_argument("--layer", required=True, choices=LAYERS, help=rungs)
    commit.add_argument(
        "--cause",
        required=True,
        choices=CHALLENGE_CAUSES,
        help="; ".join(f"{c}: {w}" for c, w in CAUSE_WORDS.items()),
    )

    hint = step("hint", _hint, "The next hint: 1 the rung to look at, 2 its evidence, 3 the fix.")
    hint.add_argument("id")

    check = step("check", _check, "Is the right server answering at the challenge's URL? (exit 0 yes, 1 no)")
    check.add_argument("id")
    check.add_argument("--watch", action="store_true", help="keep checking until it is solved")
    check.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_WATCH_S,
        help=f"with --watch: give up after this many seconds (default {DEFAULT_WATCH_S:g})",
    )

    end = step("end", _end, "End the challenge: remove what it started (your own containers only if asked).")
    end.add_argument("id")
    end.add_argument(
        "--remove-mine",
        action="store_true",
        help="also remove your own containers on the challenge's port or image",
    )

    listing = step("list", _list, "List your challenges (in progress; --all for ended ones too).")
    listing.add_argument("--all", action="store_true")

    progress = command(
        "progress", _progress, "A class's challenge records as a report: confusions, stalls, hints."
    )
    progress.add_argument(
        "folder", type=Path, help="a folder of learners' challenges.jsonl files (searched deeply)"
    )
    progress.add_argument("--plot", type=Path, default=None, help="write the plot to this PNG file")


def _emit(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    print(json.dumps(payload, indent=2, default=str) if args.json else text)


def _engine(args: argparse.Namespace) -> Any:
    """An Engine in the command line's session (one per user), closed when the command ends.

    The challenge's containers stay: they are the learner's until `portbinding challenge end`.
    """
    from portbinding import settings
    from portbinding.engine import Engine

    engine = Engine.connect(session=settings.cli_session(), owner="challenge")
    args.resources.callback(engine.close)
    return engine


def _load(args: argparse.Namespace) -> Any:
    from portbinding.challenge import store
    from portbinding.challenge.core import Challenge

    attempt = store.load(args.id)  # first: a wrong id is bad input, whether an engine answers or not
    return Challenge(_engine(args), attempt)


def _new(args: argparse.Namespace) -> int:
    from portbinding.challenge.core import Challenge

    challenge = Challenge.new(_engine(args), seed=args.seed, cause=args.cause, image=args.image)
    told = challenge.told
    text = (
        f"Challenge {told['id']}\n{told['task']}\n\n"
        f"Next: look rung by rung (`portbinding challenge look {told['id']} state`, or type the docker "
        f"commands yourself), then `portbinding challenge commit {told['id']} --layer L --cause C`."
    )
    _emit(args, told, text)
    return EXIT_OK


def _look(args: argparse.Namespace) -> int:
    view = _load(args).look(args.rung, via="cli")
    _emit(args, view.to_dict(), f"{view.title}\n{view.text()}")
    return EXIT_OK


def _commit(args: argparse.Namespace) -> int:
    result = _load(args).commit(args.layer, args.cause, via="cli")
    _emit(
        args, result, f"Committed: {args.layer} / {args.cause}. Next: {result['next'].replace('ID', args.id)}"
    )
    return EXIT_OK


def _hint(args: argparse.Namespace) -> int:
    given = _load(args).hint(via="cli")
    _emit(args, given.to_dict(), f"Hint {given.number} of 3\n{given.text}")
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    challenge = _load(args)
    if args.watch:
        if args.timeout <= 0:
            from portbinding.errors import PortBindingError

            raise PortBindingError(
                f"--timeout must be positive, got {args.timeout:g}.", hint="e.g. --timeout 600"
            )
        result = challenge.watch(timeout=args.timeout, via="cli")
    else:
        result = challenge.check(via="cli")
    mark = "Solved" if result.solved else "Not solved yet"
    _emit(args, result.to_dict(), f"{mark}: {result.why}")
    return EXIT_OK if result.solved else EXIT_PROBLEM


def _end(args: argparse.Namespace) -> int:
    ending = _load(args).end(remove_mine=args.remove_mine, via="cli")
    record = ending.record
    verdict = (
        f"solved in {record['time_to_fix_s']:.0f} s" if record.get("solved") else "not solved"
    ) + f", {record['hints_used']} hint(s)"
    if record.get("committed_cause"):
        right = "right" if record["cause_right"] else f"the cause was {record['cause']}"
        verdict += f"; you committed to {record['committed_cause']} ({right})"
    text = f"Ended: {verdict}.\nRemoved: {', '.join(ending.removed) or 'nothing'}"
    if ending.advice:
        text += f"\n{ending.advice}"
    _emit(args, ending.to_dict(), text)
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    from portbinding.challenge import store

    rows = [a for a in store.saved() if args.all or a.ended_at is None]
    payload = {
        "challenges": [
            {
                "id": a.id,
                "url": a.url,
                "container": a.container,
                "solved": a.solved_at is not None,
                "ended": a.ended_at is not None,
            }
            for a in rows
        ]
    }
    text = "\n".join(
        f"{a.id}  {a.url:32} {a.container:14} {'solved' if a.solved_at else 'open'}"
        + (" (ended)" if a.ended_at else "")
        for a in rows
    )
    _emit(args, payload, text or "No challenges. `portbinding challenge new` starts one.")
    return EXIT_OK


def _progress(args: argparse.Namespace) -> int:
    from portbinding.challenge.report import class_report, plot

    report = class_report(args.folder)
    if args.plot is not None:
        plot(report, args.plot)
    text = report.text() + (f"\n\nPlot: {args.plot}" if args.plot else "")
    _emit(args, report.to_dict(), text)
    return EXIT_OK
