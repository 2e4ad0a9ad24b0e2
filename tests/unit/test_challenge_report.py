"""The class report from simulated attempts: the confusion table, the stall points, hints per cause."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from portbinding.challenge.attempt import Attempt
from portbinding.challenge.report import class_report
from portbinding.challenge.store import append_record
from portbinding.cli import EXIT_BAD_INPUT, EXIT_OK, main

T0 = 2_000_000.0

# One row per simulated attempt: learner, real cause, first committed cause (None: never
# committed), the rungs looked at with the seconds spent on each, hints taken, solved.
CLASS = [
    ("ada", "loopback_only", "wrong_container_port", [("state", 5), ("published", 40)], 3, True),
    ("ada", "wrong_container_port", "wrong_container_port", [("published", 20)], 0, True),
    ("ada", "crashed", "crashed", [("state", 8)], 0, True),
    ("bob", "loopback_only", "wrong_container_port", [("published", 30), ("listening", 90)], 2, True),
    ("bob", "loopback_only", "loopback_only", [("listening", 12)], 1, True),
    ("bob", "not_published", "not_published", [("published", 6)], 0, True),
    ("cy", "loopback_only", "not_published", [("state", 4), ("published", 50), ("listening", 70)], 3, True),
    ("cy", "port_taken", "crashed", [("state", 45), ("published", 15)], 2, True),
    ("cy", "still_starting", "crashed", [("state", 35)], 1, True),
    ("dee", "still_starting", "still_starting", [("listening", 25)], 0, True),
    ("dee", "wrong_service", None, [("inside", 100)], 0, False),
    ("dee", "crashed", "crashed", [], 0, True),  # made in a plain terminal: no rung times
]


def simulate(folder: Path) -> None:
    """Write the class's records the way the challenge does: one file per learner, a line per snapshot."""
    for index, (learner, cause, committed, rungs, hints, solved) in enumerate(CLASS):
        a = Attempt(
            id=f"{index:06x}",
            learner=learner,
            seed=index,
            cause=cause,
            service="notebook",
            variant="v",
            host_port=20000 + index,
            url="u",
            container="c",
            image="i",
            started_at=T0,
        )
        now = T0
        for layer, seconds in rungs:
            now += 1
            a.look(layer, at=now, via="widget")
            now += seconds - 1
        if committed is not None:
            a.commit("state", committed, at=now + 1, via="widget")
            append_record(a.record(), folder / learner)  # an earlier snapshot: must be superseded
        for number in range(1, hints + 1):
            a.hint_given(number, "state", at=now + 1 + number, via="widget")
        if solved:
            a.solved(at=now + 30, via="watcher")
        a.ended(at=now + 40, via="widget")
        append_record(a.record(), folder / learner)


def test_the_confusion_table_counts_first_commitments_against_real_causes(tmp_path: Path) -> None:
    simulate(tmp_path)
    report = class_report(tmp_path)
    assert report.attempts == 12, f"each attempt once, latest snapshot: got {report.attempts}"
    assert report.learners == 4
    loopback = report.confusion["loopback_only"]
    assert loopback == {"wrong_container_port": 2, "loopback_only": 1, "not_published": 1}, loopback
    assert report.confusion["still_starting"] == {"crashed": 1, "still_starting": 1}
    assert report.confusion["wrong_service"] == {"(none)": 1}, "an attempt never committed is its own column"
    assert report.confusion["port_taken"] == {"crashed": 1}


def test_stall_points_are_the_rungs_with_the_most_time(tmp_path: Path) -> None:
    simulate(tmp_path)
    rungs = {s.layer: s for s in class_report(tmp_path).rungs}
    assert rungs["published"].looked == 6, rungs["published"]
    assert rungs["published"].median_s == 25.0, "published: 40, 20, 30, 6, 50, 15 -> median 25"
    assert rungs["listening"].looked == 4 and rungs["listening"].median_s == 47.5, rungs["listening"]
    assert rungs["listening"].stalled == 4, "listening was the longest rung for bob (twice), cy/loopback, dee"
    assert rungs["state"].stalled == 3, "state was the longest for ada/crashed, cy/port_taken, cy/still"
    assert rungs["host"].looked == 0 and rungs["host"].median_s is None
    assert class_report(tmp_path).terminal_only == 1


def test_hints_and_fixes_per_cause(tmp_path: Path) -> None:
    simulate(tmp_path)
    causes = {c.cause: c for c in class_report(tmp_path).causes}
    loopback = causes["loopback_only"]
    assert (loopback.attempts, loopback.solved, loopback.right_first) == (4, 4, 1), loopback
    assert loopback.mean_hints == 2.25, "hints 3, 2, 1, 3 over the four loopback attempts"
    assert causes["wrong_service"].solved == 0 and causes["wrong_service"].median_fix_s is None
    assert causes["crashed"].right_first == 2 and causes["crashed"].mean_hints == 0


def test_the_report_prints_its_tables_and_draws_the_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    simulate(tmp_path / "class")
    png = tmp_path / "out" / "progress.png"
    assert main(["progress", str(tmp_path / "class"), "--plot", str(png)]) == EXIT_OK
    text = capsys.readouterr().out
    assert "Committed (first call, before any hint) vs real cause" in text, text
    assert "Where learners stall" in text and "3 What listens inside" in text, text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", "the plot is not a PNG"
    assert png.stat().st_size > 10_000, "the plot is suspiciously small"
    assert main(["progress", str(tmp_path / "class"), "--json"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert data["confusion"]["loopback_only"]["wrong_container_port"] == 2, data["confusion"]


def test_unreadable_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    simulate(tmp_path)
    with (tmp_path / "ada" / "challenges.jsonl").open("a") as handle:
        handle.write("not json\n" + json.dumps({"learner": "x", "attempt": "y", "cause": "gremlins"}) + "\n")
    report = class_report(tmp_path)
    assert report.skipped_lines == 2 and report.attempts == 12, (report.skipped_lines, report.attempts)


def test_a_folder_that_is_not_there_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["progress", str(tmp_path / "nowhere")]) == EXIT_BAD_INPUT
    assert "is not a folder" in capsys.readouterr().err


def test_an_empty_class_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["progress", str(tmp_path)]) == EXIT_OK
    assert "No challenge records" in capsys.readouterr().out
