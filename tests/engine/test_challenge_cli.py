"""`portbinding challenge` on the real engine: varied, unreachable, neutral, and tidy.

Over 20 seeds the command line draws many (cause, image) pairs; every fresh challenge is really
unreachable from the host (curl and the probe agree on what they see); nothing `docker ps` or
`docker inspect` shows names the cause; the steps persist between calls; ending removes what the
challenge started and names, without removing, what the learner started.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from portbinding.challenge import Challenge, stage
from portbinding.challenge.ladder import CHALLENGE_CAUSES
from portbinding.challenge.services import service
from portbinding.challenge.store import load
from portbinding.engine import Engine
from portbinding.probe import OUTCOME_CLASS, probe_http
from tests.support.challenge import curl, shell

pytestmark = pytest.mark.engines("docker", reason="compares with the docker CLI's own view")

CLI = [sys.executable, "-m", "portbinding"]
# Words that would give a cause away if docker ps / docker inspect showed them.
TELLTALES = (*CHALLENGE_CAUSES, "loopback", "crash", "slow-start", "slow_start", "retried", "taken")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private data folder and CLI session; the session's containers are swept afterwards."""
    session = f"test-challenge-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("PORTBINDING_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PORTBINDING_SESSION", session)
    yield tmp_path
    _cli("cleanup", "--session", session)


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, check=False, env=dict(os.environ)
    )


def _json(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    try:
        payload: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        raise AssertionError(
            f"not JSON (exit {done.returncode}): {done.stdout[-400:]} {done.stderr[-400:]}"
        ) from None
    return payload


def _inspect(what: str) -> str:
    done = shell(f"docker inspect {what}")
    assert done.returncode == 0, done.stderr
    return done.stdout.lower()


def _one_seed(seed: int, home: Path, engine: Engine) -> dict[str, Any]:
    """new --seed N --json, then everything a stranger would check, then end (in this process:
    the interpreter's start-up is what a CLI call costs, and end's CLI has its own test)."""
    told = _json(_cli("challenge", "new", "--seed", str(seed), "--json"))
    attempt = load(told["id"], home)
    expected = service(attempt.service)
    said = curl(told["url"])
    probed = probe_http(told["url"], timeout=3.0)
    ps = shell(
        f"docker ps -a --no-trunc --filter name=^/{told['container']}$ --format '{{{{json .}}}}'"
    ).stdout.lower()
    seen = {"ps": ps, "inspect": _inspect(told["container"]), "image": _inspect(attempt.image)}
    ended = Challenge.load(engine, told["id"], folder=home).end(via="tests").to_dict()
    return {
        "told": told,
        "attempt": attempt,
        "expected": expected,
        "curl": said,
        "probe": probed,
        "seen": seen,
        "ended": ended,
    }


def test_twenty_seeds_are_varied_unreachable_and_do_not_name_their_cause(home: Path, engine: Engine) -> None:
    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda seed: _one_seed(seed, home, engine), range(20)))
    pairs = {(r["attempt"].cause, r["attempt"].service) for r in runs}
    assert len(pairs) >= 6, f"20 seeds gave only {len(pairs)} (cause, image) pairs: {sorted(pairs)}"
    for run in runs:
        told, attempt, said, probed = run["told"], run["attempt"], run["curl"], run["probe"]
        where = f"seed {attempt.seed} ({attempt.variant})"
        assert told["container"] and told["url"] and told["service"], f"{where}: incomplete --json: {told}"
        assert not run["expected"].answers_reply(said.status, said.body), f"{where} answers already: {said}"
        assert not run["expected"].answers(probed), f"{where}: the probe says it answers: {probed}"
        assert OUTCOME_CLASS[probed.outcome] == said.outcome_class or (
            probed.outcome == "unexpected_response" and said.exit_code == 0
        ), f"{where}: the probe says {probed.outcome}, curl exit {said.exit_code}"
        for view, text in run["seen"].items():
            leaks = [word for word in TELLTALES if word in text]
            assert not leaks, f"{where}: docker {view} shows {leaks}, which names the cause"
        situation = {
            key: value for key, value in told.items() if key not in ("causes", "layers")
        }  # the choices
        assert attempt.cause not in json.dumps(situation), (
            f"{where}: what the learner is told names the cause"
        )
        assert told["container"] in run["ended"]["removed"] or attempt.cause == "port_taken", run["ended"]


def test_the_steps_persist_between_calls_and_end_names_what_is_yours(home: Path) -> None:
    """new, hint (refused before a commitment), commit, hints 1-3, hint 3's line, check --watch, end."""
    told = _json(_cli("challenge", "new", "--cause", "not_published", "--image", "scoring-api", "--json"))
    cid = told["id"]
    early = _cli("challenge", "hint", cid)
    assert early.returncode == 2 and "Commit to a failing layer" in early.stderr, early.stderr
    assert _cli("challenge", "check", cid, "--json").returncode == 1, "a broken challenge checks as solved"
    look = _json(_cli("challenge", "look", cid, "published", "--json"))
    assert look["commands"][0] == f"docker port {told['container']}", look
    committed = _json(
        _cli("challenge", "commit", cid, "--layer", "published", "--cause", "not_published", "--json")
    )
    assert committed["committed"] == {"layer": "published", "cause": "not_published"}, committed
    hints = [_json(_cli("challenge", "hint", cid, "--json")) for _ in range(3)]
    assert [h["hint"] for h in hints] == [1, 2, 3], hints
    assert hints[0]["layer"] == "published" and hints[0]["rung"] == 2, hints[0]
    line = hints[2]["line"]
    assert line.startswith(f"docker rm -f {told['container']} && docker run"), line
    assert shell(line).returncode == 0, f"hint 3's line failed: {line}"
    watched = _cli("challenge", "check", cid, "--watch", "--timeout", "30", "--json")
    assert watched.returncode == 0 and _json(watched)["solved"] is True, watched.stdout
    ended = _json(_cli("challenge", "end", cid, "--json"))
    mine = ended["yours"]
    assert len(mine) == 1 and mine[0] in ended["advice"], (
        f"end should name the learner's own container: {ended}"
    )
    assert shell(f"docker inspect {mine[0]}").returncode == 0, (
        "end removed the learner's own container unasked"
    )
    record = ended["record"]
    assert (record["solved"], record["cause_right"], record["hints_used"]) == (True, True, 3), record
    assert record["rung_seconds"].get("published", 0) > 0, f"the CLI look was not timed: {record}"
    tidy = shell(f"docker rm -f {mine[0]} && docker rmi portbinding/challenge:{cid}")
    assert tidy.returncode == 0, f"could not remove the learner's container and the image name: {tidy.stderr}"
    lines = (home / "challenges.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["attempt"] == cid, "the record did not reach the learner's file"


def test_an_interrupted_start_leaves_nothing_behind(
    engine: Engine, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while a challenge starts: its containers and its image name are gone."""
    started: list[str] = []
    real_start = stage.start

    def start_then_interrupt(engine: Engine, container: Any, **kwargs: Any) -> None:
        real_start(engine, container, **kwargs)
        started.append(str(container.name))
        raise KeyboardInterrupt

    monkeypatch.setattr(stage, "start", start_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        Challenge.new(engine, cause="crashed", folder=home)
    assert started, "the interrupt came before anything started: the test proves nothing"
    left = [c.name for c in engine.course_containers(session=engine.session)]
    assert not left, f"an interrupted start left {left}"
    tags = shell("docker images portbinding/challenge --format '{{.Tag}}'").stdout.split()
    ours = [t for t in tags if t and any(name.endswith(t) for name in started)]
    assert not ours, f"an interrupted start left the image name(s) {ours}"
