"""Each student's engine, without the hub around it: isolation, ports, and limits that hold.

Two students are set up as the spawner sets them up (``spawner.prepare``: cgroups, their own
rootless Podman joined to them, the lesson images), then act through their own sockets as
their own users. Their limits are small here (200 tasks) so that the pids limit can be shown
biting inside a *container*: on cgroup v1 rootless Podman ignores ``--pids-limit``, and the
student's cgroup is what holds.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from portbinding.engine import free_port
from portbinding.hub import limits
from portbinding.hub.classroom import set_up, tear_down
from portbinding.hub.config import HubSettings
from portbinding.hub.engines import StudentEngine, stop_engine
from portbinding.hub.roster import Member, write_roster
from portbinding.hub.spawner import prepare
from tests.hub.classhub import LESSON_02_IMAGES, readable_venv

PIDS = 200  # threads count too (v1 pids): the Podman service alone runs a few dozen
IMAGE = "portbinding/notebook-loopback:1.0"


def _as(user: str, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``argv`` as ``user``, with the environment the spawner gives their server."""
    entry = pwd.getpwnam(user)
    env = [
        f"HOME={entry.pw_dir}",
        f"XDG_RUNTIME_DIR=/run/user/{entry.pw_uid}",
        "PATH=/usr/bin:/bin",
        f"DOCKER_HOST=unix:///run/user/{entry.pw_uid}/podman/podman.sock",
    ]
    command = [
        "setpriv",
        f"--reuid={entry.pw_uid}",
        f"--regid={entry.pw_gid}",
        "--init-groups",
        "env",
        "-i",
        *env,
        *argv,
    ]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, cwd=entry.pw_dir, check=False
    )


@pytest.fixture(scope="module")
def students(hub_base: Path) -> Iterator[tuple[HubSettings, dict[str, StudentEngine]]]:
    run = os.environ.get("PORTBINDING_RUN_ID", "local")[:6]
    members = [
        Member(f"pbl{run}j", "Instructor", "instructor"),
        Member(f"pbl{run}a", "A", "student"),
        Member(f"pbl{run}b", "B", "student"),
    ]
    base = hub_base / "engines"
    base.mkdir(parents=True, exist_ok=True)
    write_roster(base / "roster.csv", members)
    settings = HubSettings(
        name=f"e{run}",
        port=free_port(),
        roster=str(base / "roster.csv"),
        exchange=str(base / "exchange"),
        venv=str(readable_venv()),
        images=LESSON_02_IMAGES,
        pids=PIDS,
        state_base=str(base / "state"),
    )
    with contextlib.ExitStack() as stack:
        stack.callback(tear_down, settings, delete_users=True)
        set_up(settings)
        engines = {m.id: prepare(settings, m.id) for m in members if not m.is_instructor}
        for user in engines:
            stack.callback(stop_engine, user)
        yield settings, engines


def test_a_student_cannot_reach_another_students_engine_or_the_hosts(
    students: tuple[HubSettings, dict[str, StudentEngine]],
) -> None:
    """B's socket and the host's Docker socket refuse A (permission denied); A's own answers."""
    _, engines = students
    a, b = sorted(engines)
    own = _as(a, "docker", "ps")
    assert own.returncode == 0, f"{a} cannot use their own engine: {own.stderr}"
    other = _as(a, "docker", "-H", engines[b].url, "ps")
    assert other.returncode != 0 and "permission denied" in other.stderr.lower(), (
        f"{a} reached {b}'s engine: {other.stdout}{other.stderr}"
    )
    host = _as(a, "docker", "-H", "unix:///var/run/docker.sock", "ps")
    assert host.returncode != 0 and "permission denied" in host.stderr.lower(), (
        f"{a} reached the host's Docker: {host.stdout}{host.stderr}"
    )


def test_the_same_published_port_collides_and_the_course_moves_to_a_free_one(
    students: tuple[HubSettings, dict[str, StudentEngine]],
) -> None:
    """A holds 127.0.0.1:P; B's `-p P:8888` fails there (shared host network), the course's remap works."""
    _, engines = students
    a, b = sorted(engines)
    port = free_port()
    first = _as(a, "docker", "run", "-d", "--name", "pbl-port-a", "-p", f"127.0.0.1:{port}:8888", IMAGE)
    assert first.returncode == 0, first.stderr
    try:
        clash = _as(b, "docker", "run", "-d", "--name", "pbl-port-b", "-p", f"127.0.0.1:{port}:8888", IMAGE)
        assert clash.returncode != 0, "two students published the same host port"
        assert "address already in use" in clash.stderr.lower(), clash.stderr
        script = (
            "from portbinding.engine import preferred_port; import sys; "
            f"sys.stdout.write(str(preferred_port({port})))"
        )
        moved = _as(b, f"{readable_venv()}/bin/python", "-c", script)
        assert moved.returncode == 0 and int(moved.stdout) != port, f"no free port offered: {moved}"
    finally:
        for user, name in ((a, "pbl-port-a"), (b, "pbl-port-b")):
            _as(user, "docker", "rm", "-f", name)


def test_the_students_engine_and_containers_are_inside_their_limits(
    students: tuple[HubSettings, dict[str, StudentEngine]],
) -> None:
    """The Podman service and a container's processes are in the student's cgroup; pids cap bites."""
    settings, engines = students
    a = sorted(engines)[0]
    uid = pwd.getpwnam(a).pw_uid
    group = limits.groups(settings.name, a)[-1]  # pids (v1) or the unified group
    members = set(limits.members(settings.name, a))
    commands = {p: Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace") for p in members}
    service = [p for p, command in commands.items() if "podman" in command]
    assert service, f"{a}'s Podman service is not in {group}: members {sorted(members)}"
    # More processes than the limit, inside a container run without any --pids-limit.
    bomb = "for i in $(seq 300); do sleep 20 & done; wait"
    result = _as(a, "docker", "run", "--rm", "--entrypoint", "sh", IMAGE, "-c", bomb, timeout=180)
    said = (result.stdout + result.stderr).lower()
    assert "fork" in said or "resource temporarily unavailable" in said, (
        f"{PIDS} pids should stop 300 sleeps in a container; it said: {said[-800:]}"
    )
    current = limits.current(service[0])
    assert current["pids_limit"] == PIDS, f"the service's cgroup limit: {current}"
    assert all(os.stat(f"/proc/{p}").st_uid == uid for p in service), "the service runs as someone else"
    print("\nlimits seen from the service's cgroup:", json.dumps(current))
