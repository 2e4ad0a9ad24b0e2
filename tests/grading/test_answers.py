"""Answers are judged by running them, through the grading door, on the real engine.

Every correct form of an answer passes; typical wrong answers fail with the diagnosed cause
and a next step; what the course policy refuses is refused with the reason -- and no check
leaves a container behind. Port 8888 is held busy on this machine throughout, to show that a
correct answer never depends on it being free on the grader.
"""

from __future__ import annotations

import contextlib
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from portbinding.discovery import find_engine
from portbinding.engine import Engine
from portbinding.grading import CheckResult, check_config, check_fix, check_image
from portbinding.grading.door import Door
from portbinding.grading.judge import Judge
from portbinding.grading.protocol import DOOR_ENV

LOOPBACK = "portbinding/notebook-loopback:1.0"
NOTEBOOK = "portbinding/notebook:1.0"


@pytest.fixture(scope="module")
def door(docker_client: docker.DockerClient) -> Iterator[Door]:
    """A grading door on a Unix socket, on a session of its own; nothing of it may remain afterwards."""
    client, info = find_engine()
    engine = Engine(client, info, owner="tests")
    with (
        tempfile.TemporaryDirectory(prefix="door-") as folder,
        _port_8888_held(),
        Door(Judge(engine), socket_path=Path(folder) / "door.sock") as served,
    ):
        yield served
    left = engine.course_containers(session=engine.session)
    engine.cleanup(session=engine.session)
    assert not left, f"checks left containers behind: {[c.name for c in left]}"


@pytest.fixture(autouse=True)
def through_the_door(door: Door, monkeypatch: pytest.MonkeyPatch) -> None:
    """Checks talk to the door only, exactly as they do inside the grading sandbox."""
    monkeypatch.setenv(DOOR_ENV, str(door.socket_path))


@contextlib.contextmanager
def _port_8888_held() -> Iterator[None]:
    with socket.socket() as sock:
        with contextlib.suppress(OSError):  # already taken by something else: just as good
            sock.bind(("0.0.0.0", 8888))
            sock.listen(1)
        yield


@pytest.mark.parametrize(
    ("line", "options"),
    [
        (f"docker run -d --publish=8888:8888 {NOTEBOOK}", {}),
        (f"docker run -d -p 127.0.0.1:8888:8888 {NOTEBOOK}", {}),
        (
            f"docker run -d -p 8888:8888 {LOOPBACK} --ip=0.0.0.0",
            {"images": ["portbinding/notebook-loopback"]},
        ),
        (f"docker run -d -p 8888:8888 {LOOPBACK} --ServerApp.ip=''", {}),
        (f"docker run -d -p 8888:8888 {LOOPBACK} --ip='*'", {}),
        (f"docker container run -dp 9999:8888 {LOOPBACK} --ServerApp.ip=0.0.0.0", {}),  # another host port
        (f"docker run -d -p 8890:8888 {NOTEBOOK}", {"occupied_host_ports": [8888]}),
        (f"docker run -d -p 127.0.0.1:8888:8888 {NOTEBOOK}", {"private": True}),
        (
            f"docker run -d --name lab -p 8888 {NOTEBOOK}",
            {"random_host_port": True, "port_query": "docker port lab"},
        ),
        (
            f"docker run -d --name lab -P {NOTEBOOK}",
            {"random_host_port": True, "port_query": "docker port lab 8888"},
        ),
    ],
)
def test_every_correct_run_line_passes(line: str, options: dict[str, object]) -> None:
    """Any line that makes the server answer passes -- with 8888 busy on this machine."""
    result = check_fix(line, container_port=8888, **options)  # type: ignore[arg-type]
    assert result.passed, result.message
    assert result.message.startswith("Passed:")


@pytest.mark.parametrize("line", ['c.ServerApp.ip = ""', "c.ServerApp.ip = '0.0.0.0'", "c.ServerApp.ip='*'"])
def test_every_correct_config_line_passes(line: str) -> None:
    """Any config line that makes the image's server listen on every interface passes."""
    result = check_config(line, image=LOOPBACK)
    assert result.passed, result.message


@pytest.mark.parametrize(
    ("line", "options", "cause", "phrase"),
    [
        (f"docker run -d -p 8888:8888 {LOOPBACK}", {}, "loopback_only", "--ServerApp.ip=0.0.0.0"),
        (f"docker run -d -p 8888:80 {NOTEBOOK}", {}, "wrong_container_port", "container port 8888, not 80"),
        (f"docker run -d {NOTEBOOK}", {}, "not_published", "-p 127.0.0.1:8888:8888"),
        ("docker run -d -p 8000:8000 portbinding/crash-before-listen:1.0",
         {"container_port": 8000, "expect": "http", "path": "/health"}, "crashed", "MODEL_PATH"),
        (f"docker run -d -p 8888:8888 {NOTEBOOK}", {"occupied_host_ports": [8888]}, "port_in_use",
         "-p 8890:8888"),
        (f"docker run -d -p 8888:8888 {NOTEBOOK}", {"private": True}, "wrong_answer", "127.0.0.1"),
        (f"docker run -d -p 9000:8888 {NOTEBOOK}", {"host_port": 8888}, "wrong_answer", "host port 8888"),
        (f"docker run -d -p 8888:8888 {NOTEBOOK}", {"images": ["portbinding/notebook-loopback"]},
         "wrong_answer", "keep the image"),
    ],
)  # fmt: skip
def test_wrong_answers_fail_with_the_cause_and_a_next_step(
    line: str, options: dict[str, object], cause: str, phrase: str
) -> None:
    """A wrong line fails with the diagnosed cause, the evidence, and what to do next."""
    settings: dict[str, object] = {"container_port": 8888, **options}
    result = check_fix(line, **settings)  # type: ignore[arg-type]
    assert not result.passed, result.message
    assert result.cause == cause, result.message
    assert phrase in result.message and "Next step" in result.message, result.message


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        (f"docker run --privileged -p 8888:8888 {NOTEBOOK}", "--privileged is not allowed"),
        (f"docker run -v /:/host -p 8888:8888 {NOTEBOOK}", "(--volume) is not allowed"),
        (f"docker run --network host {NOTEBOOK}", "--network is not allowed"),
        (f"docker run -p 8888:8888 --entrypoint sh {NOTEBOOK}", "--entrypoint is not allowed"),
        ("docker run -p 8888:8888 alpine", "not one of the course images"),
        (f"sudo docker run -p 8888:8888 {NOTEBOOK}", "sudo"),
        (f"docker run -p 8888:8888 {NOTEBOOK}'; rm -rf /", "never closed"),
        (42, "as a string"),
    ],
)
def test_what_the_policy_refuses_is_refused_with_the_reason(answer: object, phrase: str) -> None:
    """Dangerous or malformed answers never reach the engine; the learner reads why."""
    result = check_fix(answer, container_port=8888)
    assert not result.passed and result.cause in ("refused", "invalid"), result
    assert phrase in result.message, result.message


def test_shell_injection_stays_plain_words(tmp_path: Path) -> None:
    """$(...), backticks and ; in an answer are arguments, never commands: nothing is created."""
    marker = tmp_path / "injected"
    line = f"docker run -d -p 8888:8888 {NOTEBOOK} $(touch {marker}) `touch {marker}` ; touch {marker}"
    result = check_fix(line, container_port=8888)
    assert not marker.exists()
    assert isinstance(result, CheckResult)
    config = check_config(f"c.ServerApp.ip = ''; __import__('os').system('touch {marker}')", image=LOOPBACK)
    assert not config.passed and config.cause == "invalid", config.message
    assert not marker.exists()


def test_a_twelve_factor_image_is_built_and_probed_on_a_port_it_did_not_choose() -> None:
    """check_image builds the learner's Dockerfile without network and runs it with -e PORT=<random>."""
    app = (
        "import os\nfrom http.server import BaseHTTPRequestHandler, HTTPServer\n"
        "class H(BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n        self.send_response(200)\n        self.end_headers()\n"
        "HTTPServer(('0.0.0.0', int(os.environ['PORT'])), H).serve_forever()\n"
    )
    dockerfile = 'FROM python:3.12-slim\nCOPY app.py /app.py\nENV PORT=8000\nCMD ["python", "/app.py"]\n'
    result = check_image({"app.py": app, "Dockerfile": dockerfile})
    assert result.passed, result.message
    hard_coded = check_image(
        {"app.py": app.replace("int(os.environ['PORT'])", "8000"), "Dockerfile": dockerfile}
    )
    assert not hard_coded.passed and "os.environ['PORT']" in hard_coded.message, hard_coded.message
    with_run = check_image(
        {"app.py": app, "Dockerfile": dockerfile.replace("COPY", "RUN pip install flask\nCOPY")}
    )
    assert with_run.cause == "refused" and "RUN" in with_run.message, with_run.message


def test_nothing_answers_without_a_door_while_autograding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Autograding without the sandbox (no door), checks refuse to use any engine: fail closed."""
    monkeypatch.delenv(DOOR_ENV)
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    result = check_fix(f"docker run -d -p 8888:8888 {NOTEBOOK}", container_port=8888)
    assert not result.passed and result.cause == "grader_error"
    assert "without the Port Binding Lab grading sandbox" in result.message
