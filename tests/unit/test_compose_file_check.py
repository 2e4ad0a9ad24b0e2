"""ex04's ``check_compose_file``: the file judged as written, outside the kernel -- one row per rule."""

from __future__ import annotations

from typing import Any

import pytest

from portbinding.grading.answers import InvalidAnswer
from portbinding.grading.compose_judge import check_compose_file
from portbinding.grading.compose_policy import ComposeRefused
from tests.unit.test_compose_policy import GOOD


def _ask(compose: str, **question: Any) -> tuple[bool, str]:
    result = check_compose_file({"kind": "check_compose_file", "compose": compose, **question})
    return result.passed, result.message


def _with(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new)


API_PRIVATE = {"service": "api", "published": "loopback"}
ROWS: list[tuple[str, str, dict[str, Any], bool, str]] = [
    ("api on 127.0.0.1", GOOD, API_PRIVATE, True, "on this machine only"),
    ("api on ::1", _with('"127.0.0.1:8050:50"', '"[::1]:8050:50"'), API_PRIVATE,
     True, "on this machine only"),
    ("api on every address", _with('"127.0.0.1:8050:50"', '"8050:50"'), API_PRIVATE,
     False, 'starting with "127.0.0.1:"'),
    ("api on 0.0.0.0", _with('"127.0.0.1:8050:50"', '"0.0.0.0:8050:50"'),
     API_PRIVATE, False, "it publishes 0.0.0.0:8050:50"),
    ("api not published", _with('    ports:\n      - "127.0.0.1:8050:50"\n', ""),
     API_PRIVATE, False, "it publishes nothing"),
    ("db exposed only", GOOD, {"service": "db", "published": "nowhere"}, True, "published nowhere"),
    ("db published", _with('    expose:\n      - "6379"\n', '    ports:\n      - "127.0.0.1:6379:6379"\n'),
     {"service": "db", "published": "nowhere"}, False, "expose: documents a port"),
    ("api waits for a healthy db", GOOD, {"service": "api", "waits": {"db": "service_healthy"}}, True,
     "waits for db (service_healthy)"),
    ("api waits for a started db", _with("service_healthy", "service_started"),
     {"service": "api", "waits": {"db": "service_healthy"}}, False, "it waits for db (service_started)"),
    ("api waits for nothing",
     _with("    depends_on:\n      db:\n        condition: service_healthy\n", ""),
     {"service": "api", "waits": {"db": "service_healthy"}}, False, "it waits for nothing"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("compose", "question", "passed", "words"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS]
)
def test_each_rule_judges_the_file_as_written(
    compose: str, question: dict[str, Any], passed: bool, words: str
) -> None:
    result, message = _ask(compose, **question)
    assert result is passed, message
    assert words in message, message


@pytest.mark.parametrize(
    ("question", "words"),
    [
        ({"service": "web", "published": "loopback"}, "no service called 'web'"),
        ({"service": "api", "published": "public"}, "published must be one of"),
        ({"service": "api", "waits": {"db": "ready"}}, "waits maps a service to one of"),
        ({"service": "api", "waits": ["db"]}, "waits maps a service to one of"),
    ],
)
def test_a_question_the_course_does_not_ask_is_refused_in_words(question: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidAnswer, match=words):
        _ask(GOOD, **question)


def test_a_file_the_policy_refuses_is_refused_before_any_rule() -> None:
    with pytest.raises(ComposeRefused):
        _ask(GOOD.replace("portbinding/redis:1.0", "redis:7"), service="db", published="nowhere")
