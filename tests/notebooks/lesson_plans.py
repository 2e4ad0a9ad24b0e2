"""How the lesson tests answer lessons 02-05: each prediction, command and fix a learner writes.

Each lesson asks in answer variables (``my_guess = None`` in cells tagged ``prediction``). A
plan answers every one of them -- some right, some wrong, so both of the lesson's reactions are
exercised -- and says which reaction the lesson must show, in order, with words it must use.

Where "right" depends on the engine (what curl says through a door), the right answer is the
wire table's cell for the engine the lesson runs on: the lesson is then checked against what
the course teaches about that engine, and the table against what the engine does. Elsewhere the
right answer is the lesson's own claim (a crashed container shows Exited; your probe answers
before Docker says healthy); a lesson whose claim stops being true fails here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from portbinding.discovery import find_engine
from portbinding.engine import Engine
from portbinding.lesson.hostview import own_addresses
from portbinding.lesson.wire import EngineRow, Situation, WirePath, engine_row

CHALLENGE_CELL = "challenge = ChallengeWidget("
STARTUP_DELAY_S = 15  # a drawn slow start: long enough to be seen starting, short enough to wait out
MARKS = {"✔ Right": "right", "✘ Not quite": "wrong", "- No answer given": "none"}
CURL = ("answers", "refused", "reset", "timeout")

# What the learner does with the challenge widget, as cells run in the lesson's kernel: press
# Start and read the task; choose the rung and the cause and press Commit; wait for the green.
LEARNER_CELLS = (
    "challenge._start.click()\nassert challenge.wait_idle(180), 'Start did not finish'\n"
    "import json as _json\nprint('TOLD ' + _json.dumps(challenge.challenge.told))",
    "challenge._layer.value, challenge._cause.value = {layer!r}, {cause!r}\n"
    "challenge._commit.click()\nassert challenge.wait_idle(60), 'Commit did not finish'\n"
    "print(challenge.message)",
    "assert challenge.wait_solved({timeout}), challenge.verdict\nprint('VERDICT', challenge.verdict)",
)

_UNANSWERED = re.compile(r"^(\w+) = None\b", re.M)


@dataclass(frozen=True)
class Step:
    """Answers given in one go, and the one reaction the lesson must show for them."""

    answers: dict[str, str]  # variable -> the Python source that replaces None
    verdict: str  # "right" or "wrong"
    says: tuple[str, ...] = ()
    applies: bool = True  # False where this machine cannot show that step (the lesson skips it)


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    challenge: bool = False

    def answer(self, notebook: Any) -> list[Step]:
        """Write every answer into the notebook's prediction cells; the steps the lesson will react to."""
        asked = [
            name
            for cell in notebook.cells
            if cell.cell_type == "code" and "prediction" in cell.metadata.get("tags", [])
            for name in _UNANSWERED.findall(cell.source)
        ]
        given = [name for step in self.steps for name in step.answers]
        assert sorted(asked) == sorted(given), (
            f"the lesson asks {sorted(asked)}, the plan answers {sorted(given)}"
        )
        values = {name: value for step in self.steps for name, value in step.answers.items()}
        for cell in notebook.cells:
            if cell.cell_type == "code" and "prediction" in cell.metadata.get("tags", []):
                cell.source = _UNANSWERED.sub(lambda m: f"{m.group(1)} = {values[m.group(1)]}", cell.source)
        return [step for step in self.steps if step.applies]


def _row() -> EngineRow:
    client, info = find_engine()
    try:
        found = engine_row(Engine(client, info, owner="tests"))
    finally:
        client.close()
    assert found.row is not None, f"the wire table has no row for this engine: {found.why}"
    return found.row


def _curl(row: EngineRow, situation: Situation, path: WirePath) -> str:
    outcome = row.cell(situation, path).outcome
    assert outcome in CURL, f"{row.key}: {situation} via {path} is {outcome!r}, not something curl says"
    return outcome


def _connect(row: EngineRow, situation: Situation) -> str:
    return "connects" if row.cell(situation, "tcp").outcome in ("answers", "reset") else "refused"


def _other(right: str, choices: tuple[str, ...]) -> str:
    return next(choice for choice in choices if choice != right)


def _said(value: str) -> str:
    return repr(value)


def lesson_plan(stem: str) -> Plan | None:
    """The plan for lesson ``stem`` (None for a lesson that asks nothing)."""
    maker = {
        "02-the-unreachable-notebook": _plan_02,
        "03-port-mapping": _plan_03,
        "04-failure-mode-lab": _plan_04,
        "05-model-serving-api": _plan_05,
        "07-beyond-one-container": _plan_07,
    }.get(stem)
    return maker() if maker else None


def _plan_02() -> Plan:
    row = _row()
    curl = _curl(row, "loopback_only", "loopback")
    connect = _connect(row, "loopback_only")
    wrong_connect = _other(connect, ("connects", "refused"))
    return Plan(
        (
            Step(
                {"my_curl_guess": _said(curl)},
                "right",
                (f"You predicted {curl}, and that is what happened.",),
            ),
            Step(
                {"my_reading": _said("0.0.0.0:8888")},
                "wrong",
                ("You predicted 0.0.0.0:8888; what happened: 127.0.0.1:8888.", "0100007F, read backwards"),
            ),
            Step({"my_inside_guess": _said("answers")}, "right"),
            Step(
                {"my_connect_guess": _said(wrong_connect)},
                "wrong",
                (f"You predicted {wrong_connect}; what happened: {connect}.",),
            ),
            Step({"my_rung": _said("listening"), "my_cause": _said("loopback_only")}, "right"),
        )
    )


def _plan_03() -> Plan:
    row = _row()
    door = _curl(row, "wrong_container_port", "loopback")
    address = _curl(row, "wrong_container_port", "host_ip")
    connect = _connect(row, "wrong_container_port")
    inside = (
        'f"docker exec {NAME} python3 -c \\"import urllib.request as u; '
        "print(u.urlopen('http://127.0.0.1:8888/api', timeout=3).read())\\\"\""
    )
    return Plan(
        (
            Step(
                {"rung_state": 'f"docker ps -a --filter name={NAME}"'}, "right", ("That command answers it:",)
            ),
            Step({"rung_published": 'f"docker logs {NAME}"'}, "wrong", ("does not answer this rung",)),
            Step({"rung_listening": 'f"docker exec {NAME} cat /proc/net/tcp"'}, "right"),
            Step({"rung_inside": inside}, "right"),
            Step(
                {"rung_host": 'f"docker rm -f {NAME}"'},
                "wrong",
                ("That would change things; a rung only looks.",),
            ),
            Step(
                {"my_rung": _said("host"), "my_cause": _said("loopback_only")},
                "wrong",
                ("You went past the broken rung", "the diagnosis says wrong_container_port"),
            ),
            Step(
                {
                    "my_fix": 'f"docker run -d --name {NAME} -p 127.0.0.1:{HOST_PORT}:8888 '
                    'portbinding/notebook:1.0"'
                },
                "right",
                ("Your line works",),
            ),
            Step({"my_taken_guess": _said("allocated")}, "right"),
            Step(
                {"my_held_guess": _said("allocated")},
                "wrong",
                ("You predicted allocated; what happened: in use.",),
            ),
            Step({"my_loopback_door": _said(door)}, "right"),
            Step(
                {"my_address_door": _said(_other(address, CURL))},
                "wrong",
                (f"what happened: {address}.",),
                applies=bool(own_addresses()),
            ),
            Step({"my_tcp_connect": _said(connect)}, "right"),
        )
    )


def _plan_04() -> Plan:
    row = _row()
    crashed = _curl(row, "crashed", "loopback")
    wrong_crash = "reset" if crashed != "reset" else "answers"
    service_fix = (
        'f"docker run -d --name {IMPOSTOR} -p 127.0.0.1:{IMPOSTOR_PORT}:9000 -e HOLD_PORT=8888 '
        'portbinding/notebook:1.0 --port=9000"'
    )
    return Plan(
        (
            Step({"my_status_guess": _said("Exited")}, "right"),
            Step({"my_crash_curl": _said(wrong_crash)}, "wrong", (f"what happened: {crashed}.",)),
            Step({"rung_why": 'f"docker logs {CRASHER}"'}, "right"),
            Step(
                # The broken line again: the lesson must say it does not answer and run its own.
                {
                    "my_crash_fix": 'f"docker run -d --name {CRASHER} -p 127.0.0.1:{CRASH_PORT}:8000 '
                    'portbinding/crash-before-listen:1.0"'
                },
                "wrong",
                ("does not answer", "MODEL_PATH=/app/model.json"),
            ),
            Step({"my_first_ready": _said("probe")}, "right"),
            Step({"my_status_code": _said("200")}, "right"),
            Step({"rung_where": 'f"docker port {IMPOSTOR}"'}, "wrong", ("does not answer this rung",)),
            Step({"my_service_fix": service_fix}, "right", ("Your line works",)),
            Step({"my_retry_guess": _said("crashes")}, "wrong", ("port_retries = 0",)),
            Step({"my_health_guess": _said("healthy")}, "right"),
        ),
        challenge=True,
    )


def _plan_05() -> Plan:
    row = _row()
    moved = _curl(row, "wrong_container_port", "loopback")
    return Plan(
        (
            Step({"my_moved_port_guess": _said(moved)}, "right"),
            Step(
                {
                    "my_moved_fix": 'f"docker run -d --name {MOVED} -e PORT=9000 '
                    '-p 127.0.0.1:{MOVED_PORT}:9000 scoring-api:1.0"'
                },
                "right",
                ("Your line works",),
            ),
            Step({"my_served_guess": _said("3")}, "wrong", ("You predicted 3; what happened: 0.",)),
        ),
        challenge=True,
    )


def _plan_07() -> Plan:
    """Lesson 07 on Docker: what it observes is the lesson's own claim (a 503 from the API, a 502
    from nginx, YAML 1.1's number, -p ignored with --network host), so a right answer is that claim."""
    return Plan(
        (
            Step(
                {"my_health_guess": _said("reset")},
                "wrong",
                ("You predicted reset; what happened: 503.", "one hop further"),
            ),
            Step({"my_rung": _said("host"), "my_cause": _said("peer_localhost")}, "right"),
            Step(
                {"my_publish_guess": _said("yes")},
                "wrong",
                ("You predicted yes; what happened: no.", "door on the HOST's addresses"),
            ),
            Step(
                {"my_database_url": _said("redis://db:6379/0"), "my_proxy_guess": _said("502")},
                "right",
                ("You predicted 502, and that is what happened.",),
            ),
            Step(
                {"my_yaml_guess": _said("text")},
                "wrong",
                ("You predicted text; what happened: number.", "8050 * 60 + 50 = 483050"),
            ),
            Step(
                {"my_host_network_guess": _said("refused")},
                "right",
                ("Publishing is ignored (docker port prints nothing)",),
            ),
            Step({"my_forward_guess": _said("no")}, "wrong", ("like docker exec",)),
        )
    )
