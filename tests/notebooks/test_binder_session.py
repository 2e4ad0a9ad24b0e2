"""A Binder session, simulated here: Binder's environment, no engine, an unprivileged user.

mybinder.org builds the repository with repo2docker (binder/environment.yml, binder/postBuild,
binder/start), runs it as an unprivileged user in a pod with no Docker or Podman, and its own
Jupyter holds 0.0.0.0:8888. This test rebuilds that situation as closely as this machine allows:

* a fresh venv with exactly environment.yml's dependencies, then binder/postBuild run in it;
* a user like Binder's ``jovyan`` (uid 1000, no groups);
* a mount namespace where /run is empty (no Docker or Podman socket anywhere) and a network
  namespace of its own (no engine over tcp either), with 0.0.0.0:8888 held as on Binder;
* binder/start's environment (PORTBINDING_ENGINE=process).

There, ``portbinding doctor`` must explain what is available, and lessons 00 to 02 must execute
on the process engine with no error.
"""

from __future__ import annotations

import hashlib
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
import yaml

from portbinding.provision import apt_install

REPO = Path(__file__).resolve().parents[2]
LESSONS = sorted((REPO / "notebooks").glob("0[0-2]-*.ipynb"))
BINDER_USER = "jovyan"
BINDER_UID = 1000
VENVS = Path("/var/tmp/portbinding-binder")  # readable by the Binder user, unlike /root
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian 12's 3.11, the version environment.yml pins

pytestmark = pytest.mark.notebooks


def _binder_pip_list() -> list[str]:
    environment = yaml.safe_load((REPO / "binder" / "environment.yml").read_text())
    return [str(r) for entry in environment["dependencies"] if isinstance(entry, dict) for r in entry["pip"]]


@pytest.fixture(scope="session")
def binder_python() -> Path:
    """A venv as repo2docker would make it: environment.yml's pip list, then binder/postBuild.

    Kept between runs (keyed by the environment file, pyproject and this checkout's path), as
    Binder keeps a built image.
    """
    if os.geteuid() != 0:
        pytest.fail("the Binder simulation needs root (namespaces, a second user); run it under make test")
    key = hashlib.sha256(
        (REPO / "binder/environment.yml").read_bytes() + (REPO / "pyproject.toml").read_bytes() + bytes(REPO)
    ).hexdigest()[:16]
    venv = VENVS / key
    python = venv / "bin" / "python"
    if not (venv / ".complete").exists():
        shutil.rmtree(venv, ignore_errors=True)
        _make_venv(venv)
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, *_binder_pip_list()], check=True, timeout=900)
        env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
        subprocess.run([str(REPO / "binder" / "postBuild")], cwd=REPO, env=env, check=True, timeout=300)
        (venv / ".complete").touch()
    VENVS.chmod(0o755)
    return python


def _make_venv(venv: Path) -> None:
    """A venv on Debian's own Python 3.11 (the test's may live under /root, which jovyan cannot
    read); Debian ships venv support separately, so it is installed when missing."""
    command = [SYSTEM_PYTHON, "-m", "venv", str(venv)]
    if subprocess.run(command, capture_output=True, timeout=120, check=False).returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
        apt_install("python3-venv")
        subprocess.run(command, check=True, timeout=120)


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


def _run_session(python: Path, user: pwd.struct_passwd, home: Path) -> dict[str, Any]:
    home.mkdir(mode=0o700)
    os.chown(home, user.pw_uid, user.pw_gid)
    env = {
        "HOME": str(home),
        "USER": BINDER_USER,
        "PATH": f"{python.parent}:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PORTBINDING_ENGINE": "process",  # what binder/start exports
        "PORTBINDING_RUN_ID": os.environ.get("PORTBINDING_RUN_ID", ""),
    }
    start = (REPO / "binder" / "start").read_text()
    assert "export PORTBINDING_ENGINE=process" in start, "binder/start no longer chooses the process engine"
    inside = (
        "mount -t tmpfs -o mode=755 tmpfs /run && ip link set lo up && exec setpriv "
        f"--reuid={user.pw_uid} --regid={user.pw_gid} --clear-groups --reset-env -- env "
        + " ".join(f"{k}={v}" for k, v in env.items())
        + f" {python} {Path(__file__).with_name('binder_session.py')} "
        + " ".join(str(p) for p in LESSONS)
    )
    done = subprocess.run(
        ["unshare", "--mount", "--net", "--fork", "sh", "-c", inside],
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
def binder_report(binder_python: Path, binder_user: pwd.struct_passwd) -> Iterator[dict[str, Any]]:
    # Not under pytest's temporary folder: that is private to root.
    home = VENVS / f"home-{uuid.uuid4().hex[:8]}"
    try:
        yield _run_session(binder_python, binder_user, home)
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
