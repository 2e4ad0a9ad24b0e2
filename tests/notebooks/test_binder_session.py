"""A Binder session, simulated here: Binder's environment, no engine, an unprivileged user.

mybinder.org builds the repository with repo2docker (binder/environment.yml, binder/postBuild,
binder/start), runs it as an unprivileged user in a pod with no Docker or Podman, and its own
Jupyter holds 0.0.0.0:8888. This test rebuilds that situation as closely as this machine allows:

* a venv with exactly environment.yml's dependencies, then binder/postBuild run in it, on a
  world-readable copy of the checkout (tests/support/staging.py: the checkout itself may be
  private to root);
* a user like Binder's ``jovyan`` (uid 1000, no groups);
* a mount namespace where /run is empty (no Docker or Podman socket anywhere) and a network
  namespace of its own (no engine over tcp either), with 0.0.0.0:8888 held as on Binder;
* binder/start's environment (PORTBINDING_ENGINE=process).

There, ``portbinding doctor`` must explain what is available, and lessons 00 to 02 must execute
on the process engine with no error.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.checkout import REPO
from tests.support.staging import STAGE_ROOT, Staged

# Run from the staged copy (see tests/support/staging.py): the checkout may be private to root.
LESSONS = sorted(p.relative_to(REPO) for p in (REPO / "notebooks").glob("0[0-2]-*.ipynb"))
# Lesson 07 needs networks, nginx and Redis: on Binder it must say so and stop, not fail.
STOPS = sorted(p.relative_to(REPO) for p in (REPO / "notebooks").glob("07-*.ipynb"))
BINDER_USER = "jovyan"
BINDER_UID = 1000

pytestmark = pytest.mark.notebooks


@pytest.fixture(scope="session")
def binder_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(BINDER_USER)
    except KeyError:
        # Binder's jovyan is uid 1000; where that uid is someone else's, any free one will do.
        taken = any(entry.pw_uid == BINDER_UID for entry in pwd.getpwall())
        uid = [] if taken else ["--uid", str(BINDER_UID)]
        subprocess.run(
            ["useradd", *uid, "--user-group", "--no-create-home", BINDER_USER], check=True, timeout=30
        )
        return pwd.getpwnam(BINDER_USER)


def _run_session(staged: Staged, user: pwd.struct_passwd, home: Path) -> dict[str, Any]:
    home.mkdir(mode=0o700)
    os.chown(home, user.pw_uid, user.pw_gid)
    env = {
        "HOME": str(home),
        "USER": BINDER_USER,
        "PATH": f"{staged.venv / 'bin'}:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PORTBINDING_ENGINE": "process",  # what binder/start exports
        "PORTBINDING_RUN_ID": os.environ.get("PORTBINDING_RUN_ID", ""),
    }
    start = (staged.checkout / "binder" / "start").read_text()
    assert "export PORTBINDING_ENGINE=process" in start, "binder/start no longer chooses the process engine"
    inside = (
        "mount -t tmpfs -o mode=755 tmpfs /run && ip link set lo up && exec setpriv "
        f"--reuid={user.pw_uid} --regid={user.pw_gid} --clear-groups --reset-env -- env "
        + " ".join(f"{k}={v}" for k, v in env.items())
        + f" {staged.python} {staged.checkout / 'tests' / 'support' / 'binder_session.py'} "
        + " ".join(str(staged.checkout / p) for p in (*LESSONS, *STOPS))
    )
    done = subprocess.run(
        # A PID namespace of its own: when the session ends, the kernel ends every process it
        # started (the process engine's daemon detaches and would otherwise outlive the test).
        [
            "unshare",
            "--mount",
            "--net",
            "--pid",
            "--mount-proc",
            "--fork",
            "--kill-child",
            "sh",
            "-c",
            inside,
        ],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
        cwd="/",
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("BINDER_REPORT=")]
    assert lines, (
        f"the session reported nothing (exit {done.returncode}):\n"
        f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return dict(json.loads(lines[-1].removeprefix("BINDER_REPORT=")))


@pytest.fixture(scope="session")
def binder_report(staged: Staged, binder_user: pwd.struct_passwd) -> Iterator[dict[str, Any]]:
    # Not under pytest's temporary folder: that is private to root.
    home = STAGE_ROOT / f"home-{uuid.uuid4().hex[:8]}"
    try:
        yield {**_run_session(staged, binder_user, home), "home": str(home)}
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_the_session_runs_as_an_unprivileged_user(
    binder_report: dict[str, Any], binder_user: pwd.struct_passwd
) -> None:
    assert binder_report["uid"] == binder_user.pw_uid != 0


def test_doctor_explains_there_is_no_engine_and_names_the_process_engine(
    binder_report: dict[str, Any],
) -> None:
    without = binder_report["doctor_without_engine"]
    assert without["exit"] == 3, without["text"]
    assert "No container engine answers" in without["text"]
    assert "PORTBINDING_ENGINE=process" in without["text"], without["text"]


def test_doctor_on_binder_describes_the_process_engine(binder_report: dict[str, Any]) -> None:
    chosen = binder_report["doctor_process_engine"]
    assert chosen["exit"] == 0, chosen["text"]
    assert "process engine" in chosen["text"] and "local processes" in chosen["text"], chosen["text"]


@pytest.mark.parametrize("lesson", [p.stem for p in LESSONS])
def test_lesson_runs_on_the_process_engine_in_a_binder_session(
    binder_report: dict[str, Any], lesson: str
) -> None:
    assert lesson in binder_report["lessons"], f"{lesson} was not run"
    assert binder_report["lessons"][lesson] == [], "\n\n".join(binder_report["lessons"][lesson])


@pytest.mark.parametrize("lesson", [p.stem for p in STOPS])
def test_lesson_07_says_plainly_what_it_cannot_run_on_binder(
    binder_report: dict[str, Any], lesson: str
) -> None:
    """Sections 1-2 run (your engine's row, in words); Run All then stops at one cell whose message
    names what is missing and what to do -- a course message, not a traceback."""
    stopped = binder_report["stopped"][lesson]
    assert stopped["stopped_at"] and "require_networks" in stopped["stopped_at"], stopped
    said = stopped["said"]
    assert "needs Docker or Podman" in said and "process engine" in said and "Traceback" not in said, said
    assert stopped["errors_before"] == [], stopped["errors_before"]
    assert "process engine (Binder) runs no containers" in stopped.get("text_before", ""), stopped


def test_the_session_leaves_no_process_behind(binder_report: dict[str, Any]) -> None:
    """The process engine's daemon and its containers end with the session that started them."""
    left = subprocess.run(
        ["pgrep", "-a", "-f", binder_report["home"]], capture_output=True, text=True, timeout=10, check=False
    )
    assert left.stdout == "", f"processes of the Binder session outlived it:\n{left.stdout}"
