"""An attempt's bookkeeping: rung times, the first commitment, hints, and what can no longer change."""

from __future__ import annotations

from pathlib import Path

import pytest

from portbinding.challenge.attempt import IDLE_CAP_S, Attempt
from portbinding.challenge.store import append_record, load, save, saved
from portbinding.errors import PortBindingError, UnknownName

T0 = 1_000_000.0


def attempt(cause: str = "loopback_only") -> Attempt:
    return Attempt(
        id="abc123",
        learner="ada",
        seed=7,
        cause=cause,
        service="notebook",
        variant="v",
        host_port=23456,
        url="http://127.0.0.1:23456/api",
        container="pbl-abc123",
        image="portbinding/challenge:abc123",
        started_at=T0,
    )


def test_time_on_a_rung_runs_until_the_next_step() -> None:
    """Looking at a rung starts its clock; the next look, commit or hint stops it."""
    a = attempt()
    a.look("state", at=T0 + 10, via="widget")
    a.look("published", at=T0 + 25, via="widget")
    a.look("state", at=T0 + 30, via="widget")  # back to a rung: its time adds up
    a.commit("listening", "loopback_only", at=T0 + 32, via="widget")
    a.look("listening", at=T0 + 40, via="widget")
    a.hint_given(1, "listening", at=T0 + 100, via="widget")
    a.solved(at=T0 + 130, via="watcher")
    assert a.rung_seconds() == {"state": 17.0, "published": 5.0, "listening": 60.0}, a.rung_seconds()


def test_an_idle_rung_counts_at_most_the_cap() -> None:
    a = attempt()
    a.look("host", at=T0 + 1, via="cli")
    a.solved(at=T0 + 1 + 5 * IDLE_CAP_S, via="cli")
    assert a.rung_seconds() == {"host": IDLE_CAP_S}, a.rung_seconds()


def test_the_record_keeps_the_first_commitment_and_judges_it() -> None:
    """Novices stay with their first guess: the report needs the call made before any reveal."""
    a = attempt(cause="wrong_container_port")
    a.commit("state", "loopback_only", at=T0 + 40, via="cli")
    a.hint_given(1, "published", at=T0 + 50, via="cli")
    a.hint_given(2, "published", at=T0 + 60, via="cli")
    a.commit("published", "wrong_container_port", at=T0 + 70, via="cli")
    a.solved(at=T0 + 90, via="cli")
    record = a.record()
    assert record["committed_cause"] == "loopback_only", record
    assert record["committed_layer"] == "state", record
    assert record["cause_right"] is False and record["layer_right"] is False, record
    assert record["commits"] == 2 and record["hints_used"] == 2, record
    assert record["time_to_commit_s"] == 40.0 and record["time_to_fix_s"] == 90.0, record
    assert record["rungs_observed"] is False, "a CLI-only attempt with no look has no rung times"
    assert record["layer"] == "listening", "wrong_container_port: nothing listens on the mapped port"


def test_solved_is_recorded_once() -> None:
    a = attempt()
    assert a.solved(at=T0 + 5, via="watcher") is True
    assert a.solved(at=T0 + 9, via="cli") is False, "a second check must not move the time to fix"
    assert a.record()["time_to_fix_s"] == 5.0


def test_an_ended_attempt_takes_no_more_steps() -> None:
    a = attempt()
    a.ended(at=T0 + 3, via="cli")
    with pytest.raises(PortBindingError, match="has ended"):
        a.commit("state", "crashed", at=T0 + 4, via="cli")
    with pytest.raises(PortBindingError, match="has ended"):
        a.look("state", at=T0 + 4, via="cli")


@pytest.mark.parametrize("layer, cause", [("attic", "crashed"), ("state", "gremlins")])
def test_a_commitment_must_name_a_known_rung_and_cause(layer: str, cause: str) -> None:
    with pytest.raises(UnknownName):
        attempt().commit(layer, cause, at=T0, via="cli")


def test_state_round_trips_through_its_file(tmp_path: Path) -> None:
    """The CLI and the widget share a challenge through its state file."""
    folder = tmp_path
    a = attempt()
    a.look("state", at=T0 + 1, via="widget")
    a.commit("state", "crashed", at=T0 + 2, via="widget")
    save(a, folder)
    again = load("abc123", folder)
    assert again.to_dict() == a.to_dict(), "the state changed on its way through the file"
    assert [s.id for s in saved(folder)] == ["abc123"]
    path = append_record(a.record(), folder)
    assert path.read_text().count("\n") == 1, "one record, one line"


@pytest.mark.parametrize("bad", ["../etc/passwd", "ABC", "12"])
def test_a_challenge_id_is_checked_before_it_names_a_file(bad: str, tmp_path: Path) -> None:
    with pytest.raises(PortBindingError, match="not a challenge id"):
        load(bad, tmp_path)
