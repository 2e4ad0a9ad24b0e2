"""Fixtures for the grading tests: a temporary course, graded once per session on the real engine.

``graded_course`` builds a course in a temp folder (a copy of grader/'s config and sources),
releases all three assignments, writes the submissions below -- reference
solutions, typical wrong answers and every hostile submission -- grades them with
``portbinding grade`` (ex01 in ONE run with two workers, hostile ones included), generates
the feedback, and records what the grading machine looked like before and after.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import nbformat
import pytest

from portbinding.grading.course import Course, nbgrader_env, run_nbgrader

# ------------------------------------------------------------------------------ submissions
# A submission starts from the released notebook and replaces the answer cells it names; the
# others stay unanswered. Each hostile one does its one bad thing *instead* of answering, so
# its grade must be zero, with one of its ``phrases`` in the feedback.

EX01 = "ex01-unreachable-notebook"
EX02 = "ex02-port-mapping"
EX03 = "ex03-twelve-factor-api"
ASSIGNMENTS = (EX01, EX02, EX03)
LOOPBACK = "portbinding/notebook-loopback:1.0"


@dataclass(frozen=True)
class Hostile:
    """A submission that attacks the grader, and what its feedback must say."""

    student: str
    code: dict[str, str]
    phrases: tuple[str, ...]  # at least one must be in the feedback


WRONG = {
    EX01: {
        "ex01-cause-answer": 'cause = "not_published"',
        "ex01-fixed-line-answer": f'fixed_line = "docker run -d -p 8888:8888 {LOOPBACK}"',
        "ex01-config-line-answer": "config_line = \"c.ServerApp.ip = '0.0.0.0'\"",
    },
    EX02: {
        "ex02-sides-answer": "host_side = 80\ncontainer_side = 8888",
        "ex02-mapping-answer": 'mapping_line = "docker run -d -p 8888:80 portbinding/notebook:1.0"',
        "ex02-conflict-answer": 'conflict_line = "docker run -d -p 8888:8888 portbinding/notebook:1.0"',
        "ex02-private-answer": 'private_line = "docker run -d -p 8888:8888 portbinding/notebook:1.0"',
        "ex02-random-answer": 'random_line = "docker run -d --name lab -P portbinding/notebook:1.0"\n'
        'port_command = "docker port lab 8888"',
    },
    EX03: {
        "ex03-app-answer": "%%writefile app.py\n"
        "from http.server import BaseHTTPRequestHandler, HTTPServer\n\n"
        "class H(BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(200)\n"
        "        self.end_headers()\n\n"
        'HTTPServer(("127.0.0.1", 8000), H).serve_forever()\n',
        "ex03-dockerfile-answer": "%%writefile Dockerfile\nFROM python:3.12-slim\nCOPY app.py /app/app.py\n"
        'CMD ["python3", "/app/app.py"]\n',
        "ex03-crash-answer": 'crash_cause = "crashed"\nfirst_look = "docker exec"\n'
        'crash_fixed_line = "docker run -d -p 8000:8000 portbinding/crash-before-listen:1.0"',
    },
}


def hostile(sentinel: str, course: str) -> list[Hostile]:
    """Every attack of the issue, each as one ex01 submission."""
    line = "docker run -d {} portbinding/notebook-loopback:1.0 --ip=0.0.0.0"
    return [
        Hostile(
            "h-privileged",
            {"ex01-fixed-line-answer": f'fixed_line = "{line.format("--privileged -p 8888:8888")}"'},
            ("--privileged is not allowed",),
        ),
        Hostile(
            "h-host-mount",
            {"ex01-fixed-line-answer": f'fixed_line = "{line.format("-v /:/host -p 8888:8888")}"'},
            ("(--volume) is not allowed",),
        ),
        Hostile(
            "h-host-network",
            {"ex01-fixed-line-answer": f'fixed_line = "{line.format("--network host")}"'},
            ("--network is not allowed",),
        ),
        Hostile(
            "h-docker-sdk",
            {
                "ex01-cause-answer": (
                    "import docker\n"
                    "client = docker.from_env()\n"
                    'client.containers.run("portbinding/notebook:1.0", name="pbl-hostile-sdk", detach=True,\n'
                    '                      privileged=True, volumes={"/": {"bind": "/host", "mode": "rw"}})\n'
                    'cause = "loopback_only"'
                )
            },
            ("tried to use the container engine directly",),
        ),
        Hostile(
            "h-raw-socket",
            {
                "ex01-cause-answer": (
                    "import socket\n"
                    "sock = socket.socket(socket.AF_UNIX)\n"
                    'sock.connect("/var/run/docker.sock")\n'
                    'sock.sendall(b"POST /containers/create?name=pbl-hostile-raw HTTP/1.0\\r\\n"\n'
                    '             b"Content-Type: application/json\\r\\nContent-Length: 2\\r\\n\\r\\n{}")\n'
                    "print(sock.recv(4096))\n"
                    'cause = "loopback_only"'
                )
            },
            ("tried to use the container engine directly",),
        ),
        Hostile(
            "h-shell-injection",
            {
                "ex01-fixed-line-answer": f'fixed_line = "docker run -d -p 8888:8888 {LOOPBACK} '
                "--ip=0.0.0.0; touch /tmp/pbl-injected $(touch /tmp/pbl-injected-2) "
                '`touch /tmp/pbl-injected-3`"',
                "ex01-config-line-answer": "config_line = \"c.ServerApp.ip = ''; "
                "__import__('os').system('touch /tmp/pbl-injected-4')\"",
            },
            ("Expected one assignment of a plain value",),
        ),
        Hostile("h-endless-loop", {"ex01-cause-answer": "while True:\n    pass"}, ("ran longer than",)),
        Hostile(
            "h-fork-bomb",
            {"ex01-cause-answer": "import os\nwhile True:\n    os.fork()"},
            ("processes at once",),
        ),
        Hostile(
            "h-output-flood",
            {"ex01-cause-answer": 'while True:\n    print("x" * 10_000)'},
            ("MB of output", "MB of memory"),
        ),
        Hostile(
            "h-disk-flood",
            {
                "ex01-cause-answer": (
                    'with open("flood.bin", "wb") as out:\n    while True:\n        out.write(b"0" * 2**20)'
                )
            },
            ("working folder",),
        ),
        Hostile(
            "h-left-running",
            {
                "ex01-cause-answer": (
                    "import os, threading\n"
                    "from portbinding.grading import check_fix\n"
                    'for line in ("docker run -d --name keep-me -p 8888:8888 portbinding/notebook:1.0",\n'
                    '             "docker run -d --restart=always -p 8888:8888 portbinding/notebook:1.0"):\n'
                    '    kwargs = {"container_port": 8888}\n'
                    "    threading.Thread(target=check_fix, args=(line,), kwargs=kwargs).start()\n"
                    "import time\n"
                    "time.sleep(1)  # the grader is starting the container now\n"
                    "os._exit(0)  # ... and the notebook leaves it behind"
                )
            },
            ("kernel died",),
        ),
        Hostile(
            "h-write-outside",
            {
                "ex01-cause-answer": (
                    "errors = []\n"
                    f'for target in ("{sentinel}", "{course}/gradebook.db", "../../out.txt", "/etc/hosts"):\n'
                    "    try:\n"
                    '        open(target, "a").write("pwned")\n'
                    "    except OSError as error:\n"
                    "        errors.append(str(error))\n"
                    'raise PermissionError("; ".join(errors))'
                )
            },
            ("Read-only file system",),
        ),
        Hostile(
            "h-forged-check",
            {
                "ex01-cause-answer": (
                    "import portbinding.grading as grading\n"
                    "from portbinding.grading.protocol import CheckResult\n"
                    'forged = lambda *a, **k: CheckResult(True, "ok", "forged")  # noqa: E731\n'
                    "grading.check_fix = grading.check_config = forged\n"
                    'cause = "not_published"\n'
                    f'fixed_line = "docker run -d -p 8888:8888 {LOOPBACK}"\n'
                    'config_line = "c.ServerApp.port = 8888"'
                )
            },
            ("never reached the grader",),
        ),
    ]


# ------------------------------------------------------------------------------ fixtures

REPO = Path(__file__).resolve().parents[2]
PORTBINDING = str(Path(sys.executable).parent / "portbinding")
CELL_TIMEOUT_S = 30
SANDBOX_BASE = Path("/var/lib/portbinding-grading")


@pytest.fixture(scope="session")
def grading_host(docker_client: docker.DockerClient) -> docker.DockerClient:
    """The engine, on a machine where the grader can build sandboxes (root); fail or skip otherwise."""
    if os.geteuid() != 0:
        message = "the grading sandbox needs root (see grader/README.md)"
        if os.environ.get("PORTBINDING_REQUIRE_ENGINE") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return docker_client


def make_course(root: Path, assignments: tuple[str, ...] = ASSIGNMENTS) -> Course:
    """A fresh course in ``root``: grader/'s config and sources, the assignments released."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO / "grader" / "nbgrader_config.py", root / "nbgrader_config.py")
    for assignment in assignments:
        shutil.copytree(REPO / "grader" / "source" / assignment, root / "source" / assignment)
        run_nbgrader(["generate_assignment", assignment, "--force"], cwd=root)
    return Course(root)


def submit(course: Course, student: str, assignment: str, answers: dict[str, str] | None = None) -> Path:
    """Put a submission in submitted/: the released notebook with ``answers`` (None: the reference)."""
    folder = course.submitted(student, assignment)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{assignment}.ipynb"
    if answers is None:
        shutil.copy2(course.source(assignment) / name, folder / name)
    else:
        notebook = nbformat.read(course.release(assignment) / name, as_version=4)  # type: ignore[no-untyped-call]
        for cell in notebook.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id in answers:
                cell.source = answers[grade_id]
        nbformat.write(notebook, folder / name)  # type: ignore[no-untyped-call]
    (folder / "timestamp.txt").write_text("2025-11-20 10:00:00.000000 UTC")
    return folder


def grade(course: Course, assignment: str, *, workers: int) -> dict[str, dict[str, Any]]:
    """Run ``portbinding grade`` as an instructor would; its JSON outcomes by student."""
    result = subprocess.run(
        [PORTBINDING, "grade", assignment, "--workers", str(workers), "--cell-timeout", str(CELL_TIMEOUT_S),
         "--time-limit", "240", "--course", str(course.root), "--json"],
        cwd=course.root, env=nbgrader_env(), capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"portbinding grade failed:\n{result.stdout}\n{result.stderr[-3000:]}"
    return {o["student"]: o for o in json.loads(result.stdout)["submissions"]}


def feedback_text(course: Course, student: str, assignment: str) -> str:
    """The feedback HTML nbgrader generated for a submission."""
    return (course.root / "feedback" / student / assignment / f"{assignment}.html").read_text()


@dataclass
class HostState:
    """What an attack could have changed on the grading machine."""

    containers: set[str]
    sentinel: bytes
    sandboxes: set[str]
    cgroups: set[str]
    sandbox_processes: list[str]
    injected: list[str]

    @classmethod
    def read(cls, client: docker.DockerClient, sentinel: Path) -> HostState:
        return cls(
            containers=_grading_containers(client),
            sentinel=sentinel.read_bytes(),
            sandboxes={p.name for p in SANDBOX_BASE.iterdir()} - {"uids", "runs"}
            if SANDBOX_BASE.is_dir()
            else set(),
            cgroups={str(p) for p in Path("/sys/fs/cgroup").glob("**/portbinding-grading/*") if p.is_dir()},
            sandbox_processes=_sandbox_processes(),
            injected=[str(p) for p in Path("/tmp").glob("pbl-injected*")],
        )


def _grading_containers(client: docker.DockerClient) -> set[str]:
    """Containers the grading (or an attack on it) could have made; other tests' are not ours to count."""
    labelled = client.containers.list(all=True, filters={"label": "portbinding.owner=grader"})
    named = [c for c in client.containers.list(all=True) if str(c.name).startswith(("pbl-", "keep-me"))]
    return {f"{c.name} ({c.id})" for c in [*labelled, *named]}


def _sandbox_processes() -> list[str]:
    """Processes still running as a throwaway grading uid (there must be none after grading)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            uid = next(line for line in status.read_text().splitlines() if line.startswith("Uid:")).split()[1]
        except (OSError, StopIteration):
            continue
        if int(uid) >= 1_800_000_000:
            found.append(status.parent.name)
    return found


@dataclass
class RoundTrip:
    """Everything the round-trip tests look at."""

    course: Course
    outcomes: dict[str, dict[str, dict[str, Any]]]  # assignment -> student -> outcome
    hostile: list[Hostile]
    before: HostState
    after: HostState
    engine_events: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


@pytest.fixture(scope="session")
def graded_course(
    grading_host: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RoundTrip]:
    """The whole round trip on the real engine (about three minutes on two cores)."""
    base = tmp_path_factory.mktemp("round-trip")
    course = make_course(base / "course")
    # Outside /tmp (the sandbox has its own), writable by anyone: only the sandbox protects it.
    (REPO / "test-output").mkdir(exist_ok=True)
    outside = Path(tempfile.mkdtemp(prefix="grading-sentinel-", dir=REPO / "test-output"))
    os.chmod(outside, 0o777)
    sentinel = outside / "sentinel.txt"
    sentinel.write_text("the grading machine's own file\n")
    os.chmod(sentinel, 0o666)
    attacks = hostile(str(sentinel), str(course.root))

    submit(course, "alice", EX01)
    submit(course, "bob", EX01, WRONG[EX01])
    for attack in attacks:
        submit(course, attack.student, EX01, attack.code)
    for assignment in (EX02, EX03):
        submit(course, "alice", assignment)
        submit(course, "bob", assignment, WRONG[assignment])

    before = HostState.read(grading_host, sentinel)
    started = time.time()
    outcomes, seconds = {}, {}
    for assignment in ASSIGNMENTS:
        clock = time.monotonic()
        outcomes[assignment] = grade(course, assignment, workers=2)
        seconds[assignment] = time.monotonic() - clock
        run_nbgrader(["generate_feedback", assignment, "--force"], cwd=course.root)
    events = list(
        grading_host.events(
            since=int(started),
            until=int(time.time()) + 1,
            decode=True,
            filters={"type": "container", "event": "create"},
        )
    )
    after = HostState.read(grading_host, sentinel)
    yield RoundTrip(course, outcomes, attacks, before, after, events, seconds)
    shutil.rmtree(outside, ignore_errors=True)
