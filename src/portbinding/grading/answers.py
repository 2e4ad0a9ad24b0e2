"""A check request, read and validated: what the learner answered and what the question asks.

Everything here treats the request as untrusted input (it comes from learner code): wrong
types, huge strings and odd file names become ``InvalidAnswer`` with a message for the
learner, before anything reaches the engine.
"""

from __future__ import annotations

import ast
import base64
import binascii
import random
import re
from dataclasses import dataclass
from typing import Any

from portbinding.command import RunSpec
from portbinding.errors import PolicyError

MAX_LINE_CHARS = 2000
MAX_CONTEXT_FILES = 20
MAX_CONTEXT_BYTES = 512_000
_CONTEXT_NAME = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")
# The five causes the course teaches (portbinding.diagnose), in the order the exercises list them.
CAUSES = ("crashed", "not_published", "wrong_container_port", "loopback_only", "still_starting")


class InvalidAnswer(Exception):
    """The answer cannot be checked at all (wrong type, too long, malformed); the text says why."""


@dataclass(frozen=True)
class RunQuestion:
    """What a ``check_run`` request asks: is ``line`` a correct answer to this question?"""

    line: str
    container_port: int
    expect: str = "jupyter"
    path: str = "/api"
    images: tuple[str, ...] = ()
    host_port: int | None = None
    occupied_host_ports: tuple[int, ...] = ()
    private: bool = False
    random_host_port: bool = False
    port_query: str | None = None

    @classmethod
    def from_request(cls, request: dict[str, Any]) -> RunQuestion:
        return cls(
            line=text_field(request.get("line"), what="the docker run line"),
            container_port=port_field(request.get("container_port"), what="container_port"),
            expect=expect_field(request.get("expect", "jupyter")),
            path=path_field(request.get("path", "/api")),
            images=tuple(text_field(i, what="an image", limit=200) for i in as_list(request.get("images"))),
            host_port=None
            if request.get("host_port") is None
            else port_field(request["host_port"], what="host_port"),
            occupied_host_ports=tuple(
                port_field(p, what="an occupied port") for p in as_list(request.get("occupied_host_ports"))
            ),
            private=request.get("private") is True,
            random_host_port=request.get("random_host_port") is True,
            port_query=None
            if request.get("port_query") is None
            else text_field(request["port_query"], what="the docker port command"),
        )


@dataclass(frozen=True)
class CauseQuestion:
    """What a ``check_cause`` request asks: does ``cause`` explain what ``line`` does?"""

    cause: str
    line: str
    container_port: int
    expect: str = "jupyter"
    path: str = "/api"

    @classmethod
    def from_request(cls, request: dict[str, Any]) -> CauseQuestion:
        cause = request.get("cause")
        if cause not in CAUSES:
            raise InvalidAnswer(
                f"The cause must be one of {', '.join(map(repr, CAUSES))}, not {cause!r:.80}."
            )
        return cls(
            cause=str(cause),
            line=text_field(request.get("line"), what="the docker run line"),
            container_port=port_field(request.get("container_port"), what="container_port"),
            expect=expect_field(request.get("expect", "jupyter")),
            path=path_field(request.get("path", "/api")),
        )

    def as_run(self) -> RunQuestion:
        return RunQuestion(
            line=self.line, container_port=self.container_port, expect=self.expect, path=self.path
        )


def one_mapping(spec: RunSpec) -> None:
    """PolicyError unless ``spec`` publishes at most one port, with one host port (no range).

    Every published port costs the grading machine a proxy process (or two) and a firewall
    rule: ``-p 1-65535`` asked for 65535 of them. No question needs more than one.
    """
    count = len(spec.publish) + (1 if spec.publish_all else 0)
    if count > 1:
        shown = " ".join(f"-p {m.to_spec()}" for m in spec.publish[:3]) + (
            " ..." if len(spec.publish) > 3 else ""
        )
        also = " and -P" if spec.publish_all else ""
        raise PolicyError(
            f"The line publishes {len(spec.publish)} port mapping(s){also} ({shown}); the grader publishes "
            "exactly one port per check.",
            hint="Publish only the port the question is about, with one -p HOST:CONTAINER.",
        )
    ranged = [m for m in spec.publish if m.host_port_end is not None]
    if ranged:
        raise PolicyError(
            f"-p {ranged[0].to_spec()} publishes a range of host ports; the grader publishes one host "
            "port per check.",
            hint="Give one host port (-p 8888:8888), or none (-p 8888) to let the engine choose it.",
        )


def config_line(line: str) -> str:
    """A single ``c.Section.option = literal`` assignment, normalised; InvalidAnswer otherwise."""
    try:
        tree = ast.parse(line.strip())
    except SyntaxError as error:
        raise InvalidAnswer(
            f"{line!r} is not a line of Python ({error.msg}). Expected e.g. c.ServerApp.port = 8888."
        ) from None
    body = tree.body
    ok = (
        len(body) == 1
        and isinstance(body[0], ast.Assign)
        and len(body[0].targets) == 1
        and _is_config_target(body[0].targets[0])
        and _is_literal(body[0].value)
    )
    if not ok:
        raise InvalidAnswer(
            f"Expected one assignment of a plain value to a Jupyter setting, like "
            f"c.ServerApp.port = 8888, but got {line!r}."
        )
    return ast.unparse(tree)


def _is_config_target(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and isinstance(node.value.value, ast.Name)
        and node.value.value.id == "c"
    )


def _is_literal(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str | int | float | bool) or node.value is None
    if isinstance(node, ast.List | ast.Tuple):
        return all(_is_literal(item) for item in node.elts)
    return False


def context_files(raw: object) -> dict[str, bytes]:
    if not isinstance(raw, dict) or not raw:
        raise InvalidAnswer("No files were sent to build: expected a Dockerfile and your app next to it.")
    if len(raw) > MAX_CONTEXT_FILES:
        raise InvalidAnswer(
            f"{len(raw)} files is too many to build; the grader takes at most {MAX_CONTEXT_FILES}."
        )
    files: dict[str, bytes] = {}
    for name, encoded in raw.items():
        if not isinstance(name, str) or not _CONTEXT_NAME.fullmatch(name) or ".." in name.split("/"):
            raise InvalidAnswer(
                f"{name!r} is not a file name the grader accepts (letters, digits, . _ - and /)."
            )
        try:
            files[name] = base64.b64decode(str(encoded), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidAnswer(f"The content of {name} did not arrive intact.") from None
    if sum(len(data) for data in files.values()) > MAX_CONTEXT_BYTES:
        raise InvalidAnswer(
            f"The files add up to more than {MAX_CONTEXT_BYTES // 1000} kB; an app for this "
            "exercise is a few kB."
        )
    return files


def port_not_in(files: dict[str, bytes], dockerfile_text: bytes) -> int:
    """A PORT value for the run that appears nowhere in the learner's files (so it cannot be hard-coded)."""
    everything = b"".join([dockerfile_text, *files.values()])
    while True:
        port = random.randint(20000, 29999)
        if str(port).encode() not in everything:
            return port


def text_field(value: object, *, what: str, limit: int = MAX_LINE_CHARS) -> str:
    if not isinstance(value, str):
        raise InvalidAnswer(
            f"Expected {what} as a string (in quotes), but it is {type(value).__name__}: {value!r:.80}."
        )
    if len(value) > limit:
        raise InvalidAnswer(
            f"{what.capitalize()} is {len(value)} characters long; the grader reads at most {limit}."
        )
    if not value.strip():
        raise InvalidAnswer(f"{what.capitalize()} is empty.")
    return value


def port_field(value: object, *, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise InvalidAnswer(f"{what} must be a port number from 1 to 65535, got {value!r}.")
    return value


def expect_field(value: object) -> str:
    if value not in ("jupyter", "http"):
        raise InvalidAnswer(f"expect must be 'jupyter' or 'http', got {value!r}.")
    return str(value)


def path_field(value: object) -> str:
    text = text_field(value, what="the path", limit=200)
    if not text.startswith("/") or any(c.isspace() for c in text):
        raise InvalidAnswer(f"The path must start with / and contain no spaces, got {text!r}.")
    return text


def as_list(value: object) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise InvalidAnswer(f"Expected a list, got {type(value).__name__}.")
    return list(value)
