"""Fixtures for the grading tests: a course under /srv, graded once per session on the real engine.

``graded_course`` builds a course where grading servers keep them (``/srv/portbinding-test-<id>``,
outside /root, /home and /tmp, so no wall can lean on those being hidden): a copy of grader/'s
config and sources, all three assignments released. It writes the honest submissions below
(reference solutions, typical wrong answers) and every hostile one in ``submissions/`` (see
``attacks``), grades them with ``portbinding grade`` (ex01 in ONE run with two workers, hostile
ones included), generates the feedback, and records what the grading machine looked like
before and after.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import nbformat
import pytest

from portbinding.grading.course import Course, nbgrader_env, run_nbgrader
from tests.support.checkout import REPO

from . import attacks

# ------------------------------------------------------------------------------ submissions
# A submission starts from the released notebook and replaces the answer cells it names; the
# others stay unanswered. The hostile ones are files in submissions/ (see attacks.py).

EX01 = "ex01-unreachable-notebook"
EX02 = "ex02-port-mapping"
EX03 = "ex03-twelve-factor-api"
EX04 = "ex04-compose-two-services"
ASSIGNMENTS = (EX01, EX02, EX03, EX04)
# ex04's typical wrong file: the database still at localhost and published "to make it
# reachable", the API waiting only for it to start (its port is private: that point is kept).
EX04_WRONG_FILE = """
services:
  api:
    image: portbinding/scoring-api:1.0
    environment:
      PORT: "50"
      DATABASE_URL: redis://localhost:6379/0
    ports:
      - "127.0.0.1:8050:50"
    depends_on:
      - db
  db:
    image: portbinding/redis:1.0
    ports:
      - "6379:6379"
"""
LOOPBACK = "portbinding/notebook-loopback:1.0"


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
    EX04: {
        "ex04-compose-answer": f'compose_file = """{EX04_WRONG_FILE}"""',
        "ex04-yaml-answer": "yaml_reads = 8050",
        "ex04-cause-answer": 'database_cause = "not_published"',
    },
}


# ------------------------------------------------------------------------------ fixtures

PORTBINDING = str(Path(sys.executable).parent / "portbinding")
CELL_TIMEOUT_S = 30
SANDBOX_BASE = Path("/var/lib/portbinding-grading")
COURSE_ID = "port-binding-lab"  # grader/nbgrader_config.py's
TIMESTAMP = "2025-11-20 10:00:00.000000 UTC"
SECRET_TEXT = "PBL-SECRET-" + secrets.token_hex(8)  # only root may read the file holding it
SOLUTION_MARKER = "solution-marker-" + secrets.token_hex(8)  # in source/'s ex01 solution only
STUDENT_UID = 1_799_000_123  # a student's own account, below the grading sandboxes' uids


@pytest.fixture(scope="session")
def grading_host(docker_client: docker.DockerClient) -> docker.DockerClient:
    """The engine, on a machine where the grader can build sandboxes (root); fail or skip otherwise."""
    if os.geteuid() != 0:
        message = "the grading sandbox needs root (see grader/README.md)"
        if os.environ.get("PORTBINDING_REQUIRE_ENGINE") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return docker_client


def make_course(
    root: Path, assignments: tuple[str, ...] = ASSIGNMENTS, *, marker: str | None = None
) -> Course:
    """A fresh course in ``root``: grader/'s config and sources, the assignments released.

    With ``marker``, ex01's first solution also holds a comment with that text: found in
    source/ and in reference submissions only, so a feedback showing it read them.
    """
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO / "grader" / "nbgrader_config.py", root / "nbgrader_config.py")
    for assignment in assignments:
        shutil.copytree(REPO / "grader" / "source" / assignment, root / "source" / assignment)
        if marker and assignment == EX01:
            path = root / "source" / EX01 / f"{EX01}.ipynb"
            notebook = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
            cell = next(c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("solution"))
            cell.source = cell.source.replace("### BEGIN SOLUTION\n", f"### BEGIN SOLUTION\n# {marker}\n", 1)
            nbformat.write(notebook, path)  # type: ignore[no-untyped-call]
        run_nbgrader(["generate_assignment", assignment, "--force"], cwd=root)
    return Course(root)


def submit(
    course: Course,
    student: str,
    assignment: str,
    answers: dict[str, str] | None = None,
    *,
    reference: bool | None = None,
    folder: Path | None = None,
) -> Path:
    """Put a submission in submitted/ (or ``folder``): the released notebook (or with ``reference``,
    the instructors' solution; the default without ``answers``) with ``answers`` in its cells."""
    folder = folder or course.submitted(student, assignment)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{assignment}.ipynb"
    solution = answers is None if reference is None else reference
    base = course.source(assignment) if solution else course.release(assignment)
    notebook = nbformat.read(base / name, as_version=4)  # type: ignore[no-untyped-call]
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if answers and grade_id in answers:
            cell.source = answers[grade_id]
    nbformat.write(notebook, folder / name)  # type: ignore[no-untyped-call]
    (folder / "timestamp.txt").write_text(TIMESTAMP)
    return folder


def submit_attack(course: Course, attack: attacks.Attack, exchange: Path) -> None:
    """Place a hostile submission as its file says: in submitted/, or in the exchange's inbound."""
    folder = None
    if attack.via_exchange:  # where `nbgrader submit` would have put it
        inbound = exchange / COURSE_ID / "inbound"
        inbound.mkdir(parents=True, exist_ok=True)
        folder = inbound / f"{attack.student}+{attack.assignment}+{TIMESTAMP}+{secrets.token_hex(4)}"
    folder = submit(
        course, attack.student, attack.assignment, attack.answers, reference=attack.reference, folder=folder
    )
    for name, text in attack.files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    for name, target in attack.symlinks.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).symlink_to(target)
    if attack.student_owned:  # as on a real exchange: the student's uid, not root
        for path in [folder, *folder.rglob("*")]:
            os.chown(path, STUDENT_UID, STUDENT_UID, follow_symlinks=False)
    for name, target in attack.hardlinks.items():
        os.link(target, folder / name)


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
    sandboxes: dict[str, str]  # sandbox folder -> its session (other runs' sandboxes come and go too)
    sandbox_uids: dict[str, int]  # sandbox folder -> the throwaway uid it holds
    cgroups: set[str]  # names of sandbox cgroups (a sandbox's folder name)
    sandbox_processes: dict[str, str]  # pid -> the sandbox (cgroup name) it runs in, "" if none
    injected: list[str]
    keys: dict[int, int]  # grading uid -> how many kernel keys it owns (keys outlive processes)

    @classmethod
    def read(cls, client: docker.DockerClient, sentinel: Path) -> HostState:
        # What a sandbox holds (cgroups, processes, keys) is read *before* the sandbox folders: a
        # sandbox's folder exists before and after all of those, so another run's sandbox seen
        # holding one is also seen among the folders (and so told apart from ours).
        cgroups = {p.name for p in Path("/sys/fs/cgroup").glob("**/portbinding-grading/*") if p.is_dir()}
        processes, keys = _sandbox_processes(), _grading_uid_keys()
        sandboxes = _sandboxes()
        return cls(
            containers=_grading_containers(client),
            sentinel=sentinel.read_bytes(),
            sandboxes={name: session for name, (session, _) in sandboxes.items()},
            sandbox_uids={name: uid for name, (_, uid) in sandboxes.items()},
            cgroups=cgroups,
            sandbox_processes=processes,
            injected=[str(p) for p in Path("/tmp").glob("pbl-injected*")],
            keys=keys,
        )


def _grading_uid_keys() -> dict[int, int]:
    """How many kernel keys each throwaway grading uid owns (from /proc/key-users)."""
    lines = Path("/proc/key-users").read_text().splitlines() if Path("/proc/key-users").exists() else []
    found = {}
    for line in lines:  # "  uid:  usage nkeys/nikeys qnkeys/maxkeys qnbytes/maxbytes"
        uid, _, rest = line.partition(":")
        if int(uid) >= 1_800_000_000:
            found[int(uid)] = int(rest.split()[1].split("/")[0])
    return found


def _grading_containers(client: docker.DockerClient) -> set[str]:
    """Containers this run's grading (or an attack on it) could have made; other runs' are not ours.

    Listed sparse (no inspection per container): other runs' containers come and go meanwhile.
    """
    run = f"portbinding.run={os.environ['PORTBINDING_RUN_ID']}"
    labelled = client.containers.list(
        all=True, sparse=True, filters={"label": ["portbinding.owner=grader", run]}
    )
    named = [
        c for c in client.containers.list(all=True, sparse=True)
        if any(name.lstrip("/").startswith(("pbl-hostile", "keep-me")) for name in c.attrs.get("Names") or [])
    ]  # fmt: skip
    return {f"{(c.attrs.get('Names') or ['?'])[0].lstrip('/')} ({c.id})" for c in [*labelled, *named]}


def _sandboxes() -> dict[str, tuple[str, int]]:
    """Sandbox folder -> (its session, its uid: the owner of its ipc/ folder; -1 if unknown)."""
    found = {}
    for folder in SANDBOX_BASE.iterdir() if SANDBOX_BASE.is_dir() else []:
        if folder.name not in ("uids", "runs"):
            session, uid = "", -1
            with contextlib.suppress(OSError):
                session = (folder / "session").read_text()
            with contextlib.suppress(OSError):
                uid = (folder / "ipc").stat().st_uid
            found[folder.name] = (session, uid)
    return found


def _sandbox_processes() -> dict[str, str]:
    """Processes running as a throwaway grading uid, and the sandbox (cgroup) each is in."""
    found = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            uid = next(line for line in status.read_text().splitlines() if line.startswith("Uid:")).split()[1]
            groups = (status.parent / "cgroup").read_text()
        except (OSError, StopIteration):
            continue
        if int(uid) >= 1_800_000_000:
            names = [
                line.rsplit("/", 1)[-1] for line in groups.splitlines() if "/portbinding-grading/" in line
            ]
            found[status.parent.name] = names[0] if names else ""
    return found


@dataclass
class RoundTrip:
    """Everything the round-trip tests look at."""

    course: Course
    outcomes: dict[str, dict[str, dict[str, Any]]]  # assignment -> student -> outcome
    hostile: list[attacks.Attack]
    before: HostState
    after: HostState
    engine_events: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


@pytest.fixture(scope="session")
def srv_base() -> Iterator[Path]:
    """``/srv/portbinding-test-<id>``: where a grading server would keep its courses; removed afterwards."""
    base = Path("/srv") / f"portbinding-test-{os.environ.get('PORTBINDING_RUN_ID', secrets.token_hex(6))}"
    base.mkdir(mode=0o755, parents=True)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def graded_course(grading_host: docker.DockerClient, srv_base: Path) -> RoundTrip:
    """The whole round trip on the real engine (about three minutes on two cores)."""
    course = make_course(srv_base / "course", marker=SOLUTION_MARKER)
    exchange = srv_base / "exchange"
    # Outside the course and outside /tmp, writable by anyone: only the sandbox protects it.
    outside = srv_base / "machine"
    outside.mkdir(mode=0o777)
    os.chmod(outside, 0o777)
    sentinel = outside / "sentinel.txt"
    sentinel.write_text("the grading machine's own file\n")
    os.chmod(sentinel, 0o666)
    secret = outside / "secret.txt"  # like /etc/shadow: root's alone
    secret.write_text(SECRET_TEXT + "\n")
    os.chmod(secret, 0o600)
    values = {"@COURSE@": str(course.root), "@SENTINEL@": str(sentinel), "@SECRET@": str(secret),
              "@SECRET_TEXT@": SECRET_TEXT, "@EXCHANGE@": str(exchange),
              "@SOLUTION_MARKER@": SOLUTION_MARKER}  # fmt: skip
    hostile = attacks.load(values)

    submit(course, "alice", EX01)
    submit(course, "bob", EX01, WRONG[EX01])
    for attack in hostile:
        submit_attack(course, attack, exchange)
    for assignment in (EX02, EX03, EX04):
        submit(course, "alice", assignment)
        submit(course, "bob", assignment, WRONG[assignment])
    for assignment in sorted({a.assignment for a in hostile if a.via_exchange}):
        # The attacks' student ids are no login names here: the owner check (test_exchange_collect)
        # is off, so that what these attacks reach for is tested behind it.
        options = [f"--Exchange.root={exchange}", "--ExchangeCollect.check_owner=False"]
        run_nbgrader(["collect", assignment, *options], cwd=course.root)

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
    return RoundTrip(course, outcomes, hostile, before, after, events, seconds)
