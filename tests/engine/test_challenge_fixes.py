"""Every way a challenge can be broken, on the real engine: hints lead to a line that fixes it, a
fix made with the plain docker CLI turns it solved within moments of the server answering, and a
non-fix (restarting the broken container, another service on the port) never does.

One test per variant (cause x image). Its two challenges start together: A is solved through the
hints (hint 3's line run in bash as it is), B through the test's own docker commands.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from portbinding.challenge import Challenge
from portbinding.challenge.draw import VARIANTS, Variant
from portbinding.challenge.ladder import LAYER_OF, RUNG
from portbinding.engine import Engine
from portbinding.probe import wait_until
from tests.support.challenge import TEST_LABELS, FirstAnswer, curl, shell

pytestmark = pytest.mark.engines("docker", reason="learners' fixes are typed with the docker CLI")

# The test's own fix per service: start the right server on the challenge's host port, the way a
# learner who knows the image would -- none of it comes from the course's hints or fixes.
OWN_FIX = {
    "notebook": "portbinding/notebook:1.0",
    "scoring-api": "portbinding/scoring-api:2.0",  # another version of the service still counts
    "churn-model": "-e MODEL_PATH=/app/model.json portbinding/crash-before-listen:1.0",
    "model-server": "-e STARTUP_DELAY=1 portbinding/slow-start:1.0",
}
CONTAINER_PORT = {"notebook": 8888, "scoring-api": 8000, "churn-model": 8000, "model-server": 8000}
# Another course service, to put on the challenge's port as a non-fix (light ones: no Jupyter).
OTHER_SERVICE = {
    "notebook": "portbinding/scoring-api:1.0",
    "scoring-api": "-e STARTUP_DELAY=0 portbinding/slow-start:1.0",
    "churn-model": "portbinding/scoring-api:1.0",
    "model-server": "portbinding/scoring-api:1.0",
}
STARTUP_DELAY_S = 12  # still_starting: long enough to watch a restart fail, short enough to wait out
LAG_BOUND_S = 2.0  # generous: bench/challenge_lag.py measures the real lag against the 1 s goal


@dataclass(frozen=True)
class Pair:
    """Two challenges of one variant: A for the hints, B for the test's own fixes."""

    variant: Variant
    a: Challenge
    b: Challenge


@pytest.fixture(scope="module", params=VARIANTS, ids=lambda v: v.id)
def pair(
    request: pytest.FixtureRequest,
    session_engine: Engine,
    course_images: object,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Pair]:
    """Both challenges of a variant, started together and shared by the two tests; ended (with the
    test's own containers) whatever happens, and nothing of the session left."""
    variant: Variant = request.param
    folder = tmp_path_factory.mktemp("challenges")
    with Engine(session_engine.client, session_engine.info, owner="tests") as engine:
        seeds = (secrets.randbelow(10**6), secrets.randbelow(10**6))
        with ThreadPoolExecutor(2) as pool:
            futures = [
                pool.submit(
                    Challenge.new,
                    engine,
                    seed=seed,
                    cause=variant.cause,
                    image=variant.service,
                    startup_delay=STARTUP_DELAY_S,
                    folder=folder,
                )
                for seed in seeds
            ]
            a, b = (f.result() for f in futures)
        try:
            for fresh in (a, b):  # every fresh challenge is really unreachable: curl agrees
                said = curl(fresh.url)
                assert not fresh.expected.answers_reply(said.status, said.body), (
                    f"{variant.id} answers already (seed {fresh.attempt.seed}): {said}"
                )
            yield Pair(variant, a, b)
        finally:
            for challenge in (a, b):
                challenge.end(remove_mine=True, via="tests")
    left = engine.course_containers(session=engine.session)
    assert not left, f"challenges left containers behind: {[c.name for c in left]}"


def _not_solved_while(challenge: Challenge, seconds: float, what: str) -> None:
    check = challenge.watch(timeout=seconds)
    assert not check.solved, (
        f"{what} turned the challenge solved: {check.why} (seed {challenge.attempt.seed})"
    )


def _settled(challenge: Challenge) -> bool:
    """The broken container is back where it was: listening, exited, or logging its delay."""
    container = challenge.engine.get(challenge.attempt.container)
    if not challenge.engine.is_running(container):
        return True
    return bool(challenge.engine.listeners(container)) or challenge.attempt.cause == "still_starting"


def test_hints_lead_to_a_line_that_solves_it(pair: Pair) -> None:
    """Hints 1-3 come from the live diagnosis; hint 3's line, pasted into bash, solves the challenge."""
    variant, challenge = pair.variant, pair.a
    seed, port = challenge.attempt.seed, challenge.attempt.host_port
    found = challenge.finding()
    assert found.cause == variant.cause, (
        f"the live diagnosis says {found.cause}, drawn {variant.cause} (seed {seed})"
    )
    challenge.commit("state", "crashed", via="tests")
    first, second, third = (challenge.hint(via="tests") for _ in range(3))
    rung = RUNG[LAYER_OF[variant.cause]]
    assert (first.number, first.layer) == (1, rung.layer), first
    assert f"rung {rung.number}" in first.text, f"hint 1 does not name the rung: {first.text}"
    assert second.commands and second.commands[0].startswith(("docker ", "curl ")), second.commands
    assert f"$ {second.commands[0]}" in second.text, f"hint 2 does not show its command: {second.text}"
    assert challenge.attempt.container in second.text or variant.cause == "port_taken", second.text
    if variant.cause == "port_taken":
        # A container whose start was refused never ran: the diagnosis says stopped, never crashed.
        assert found.diagnosis is not None and found.diagnosis.cause == "stopped", found.diagnosis
        assert "created but never started -- not crashed" in second.text, second.text
    assert third.line, f"hint 3 has no line to paste: {third.text}"
    # Every fix names the host port, except starting again a container that already publishes it.
    assert str(port) in third.line or " start " in third.line, f"hint 3 misses host port {port}: {third.line}"
    assert challenge.attempt.hints_used == 3, "each hint is counted"
    ran = shell(third.line, timeout=STARTUP_DELAY_S + 60)
    assert ran.returncode == 0, f"hint 3's line failed: {third.line}\n{ran.stderr[-600:]}"
    check = challenge.watch(timeout=60)
    assert check.solved, f"hint 3's line did not solve it (seed {seed}): {third.line}\n{check.why}"
    after = challenge.hint(via="tests")
    assert "Nothing to hint" in after.text, after.text


def test_a_docker_cli_fix_solves_it_and_non_fixes_never_do(pair: Pair) -> None:
    """Restarting the broken container or publishing another service on the port does not count;
    the right server started with plain docker commands does, within moments of answering."""
    variant, challenge = pair.variant, pair.b
    a = challenge.attempt
    seed, port, name = a.seed, a.host_port, a.container

    if variant.cause == "port_taken":
        restarted = shell(f"docker restart -t 1 {a.squatter}")
        assert restarted.returncode == 0, f"docker restart {a.squatter} failed: {restarted.stderr}"
        started = shell(f"docker start {name}")
        assert started.returncode != 0, "the broken container started although the port is held"
        assert "already allocated" in started.stderr, started.stderr
    else:
        assert shell(f"docker restart -t 1 {name}").returncode == 0, "docker restart failed"
        assert wait_until(lambda: _settled(challenge), timeout=30), f"{name} did not settle after a restart"
    _not_solved_while(challenge, 1.5, "restarting the broken container")

    if variant.cause == "port_taken":
        _not_solved_while(challenge, 0.5, f"another service ({a.squatter}) holding the port")
        fix = f"docker stop -t 1 {a.squatter} && docker start {name}"
    else:
        other = shell(
            f"docker rm -f {name} && docker run -d {TEST_LABELS} -p 127.0.0.1:{port}:"
            f"{_other_port(variant.service)} {OTHER_SERVICE[variant.service]}"
        )
        assert other.returncode == 0, other.stderr
        assert wait_until(lambda: curl(challenge.url).status is not None, timeout=30), (
            "the other service never answered"
        )
        check = challenge.watch(timeout=1.0)
        assert not check.solved and "not as" in check.why, f"another service counted: {check.why}"
        other_id = other.stdout.strip().splitlines()[-1]
        fix = (
            f"docker rm -f {other_id} && docker run -d {TEST_LABELS} -p 127.0.0.1:{port}:"
            f"{CONTAINER_PORT[variant.service]} {OWN_FIX[variant.service]}"
        )

    stopwatch = FirstAnswer(challenge.url, challenge.expected)
    try:
        ran = shell(fix)
        assert ran.returncode == 0, f"the test's own fix failed: {fix}\n{ran.stderr}"
        check = challenge.watch(timeout=60)
        detected = time.monotonic()
        # The stopwatch may see the answer a moment after the watcher did: then the lag is <= 0.
        wait_until(lambda: stopwatch.at is not None, timeout=3)
    finally:
        stopwatch.stop()
    assert check.solved, f"a right fix was not seen (seed {seed}): {fix}\n{check.why}"
    assert stopwatch.at is not None, "the stopwatch never saw the service answer"
    lag = detected - stopwatch.at
    assert lag <= LAG_BOUND_S, f"solved {lag:.2f} s after the server first answered (bound {LAG_BOUND_S} s)"


def _other_port(service: str) -> int:
    return 8000  # every service in OTHER_SERVICE listens on 8000
