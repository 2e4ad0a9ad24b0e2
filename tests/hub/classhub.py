"""A real hub for the tests: a generated roster, Unix users, JupyterHub started and stopped.

``running_hub`` sets up a class (``portbinding.hub.classroom.set_up``) under a state folder the
test owns, starts ``jupyterhub`` in its own session, waits until it answers, and on the way out
(errors and interrupts too) stops it -- which stops every server and, through the spawner, every
student's Podman -- then removes the cgroups, the Unix users and their subordinate ids.

Member ids carry the run's id (``pbl<run>s1``), so runs beside each other never share a user.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from portbinding.engine import free_port
from portbinding.host import log_tail
from portbinding.hub.classroom import closed_folder, handout_path, set_up, tear_down
from portbinding.hub.config import HubSettings
from portbinding.hub.roster import Member, write_roster
from portbinding.probe import wait_until
from tests.support.checkout import REPO

LESSON_02_IMAGES = ["portbinding/notebook-loopback:1.0", "portbinding/notebook:1.0"]
HUB_EXTRA = "jupyterhub>=5,<7"


@dataclass
class ClassHub:
    settings: HubSettings
    members: list[Member]
    passwords: dict[str, str]
    log: Path

    @property
    def url(self) -> str:
        return self.settings.url

    @property
    def students(self) -> list[Member]:
        return [m for m in self.members if not m.is_instructor]

    @property
    def instructor(self) -> Member:
        return next(m for m in self.members if m.is_instructor)


def readable_venv() -> Path:
    """A venv every user can run: this one if its folders are open to others, else a staged one."""
    venv = Path(sys.prefix)
    if closed_folder(venv) is None and closed_folder((venv / "bin" / "python").resolve().parent) is None:
        return venv
    from tests.support.staging import stage

    staged = stage(REPO)
    if not (staged.venv / "bin" / "jupyterhub-singleuser").exists():
        subprocess.run(
            [str(staged.python), "-m", "pip", "install", "--quiet", HUB_EXTRA], check=True, timeout=900
        )
    return staged.venv


def make_members(run: str, students: int) -> list[Member]:
    tag = run[:6]
    return [Member(f"pbl{tag}i", "Ida Instructor", "instructor")] + [
        Member(f"pbl{tag}s{n}", f"Student {n}", "student") for n in range(1, students + 1)
    ]


@contextlib.contextmanager
def running_hub(base: Path, *, students: int = 3, images: list[str] | None = None) -> Iterator[ClassHub]:
    run = os.environ.get("PORTBINDING_RUN_ID", secrets.token_hex(6))
    members = make_members(run, students)
    base.mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o755)
    roster = base / "roster.csv"
    write_roster(roster, members)
    settings = HubSettings(
        name=f"t{run[:8]}",
        port=free_port(),
        roster=str(roster),
        exchange=str(base / "exchange"),
        venv=str(readable_venv()),
        images=list(LESSON_02_IMAGES if images is None else images),
        state_base=str(base / "state"),
        extra_env={"PORTBINDING_RUN_ID": run},
    )
    log = base / "jupyterhub.log"
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, settings.state, ignore_errors=True)
        stack.callback(tear_down, settings, delete_users=True)
        set_up(settings)
        passwords = dict(
            line.split(",", 1) for line in handout_path(settings).read_text().splitlines()[1:] if line
        )
        env = {**os.environ, "PATH": f"{settings.venv}/bin:{os.environ['PATH']}"}
        with log.open("ab") as out:
            hub = subprocess.Popen(
                [f"{settings.venv}/bin/jupyterhub", "-f", str(settings.state / "jupyterhub_config.py")],
                cwd=settings.state,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        stack.callback(_stop, hub)
        up = wait_until(lambda: _answers(settings.url), timeout=60, alive=lambda: hub.poll() is None)
        assert up, f"JupyterHub did not answer on {settings.url}:\n{log_tail(log, 30)}"
        yield ClassHub(settings, members, passwords, log)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/hub/api", timeout=2) as reply:
            return "version" in json.loads(reply.read())
    except (OSError, ValueError, urllib.error.URLError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM: JupyterHub stops every server (cleanup_servers) and its proxy; SIGKILL if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
