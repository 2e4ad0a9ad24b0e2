"""What another user needs to run the course from a checkout it cannot read: a staged copy.

``make test`` runs as root, in a checkout that may live where nobody else can enter (/root/x,
``mktemp -d``). Tests that run the course as ``nobody``, as Binder's ``jovyan`` or as a
throwaway uid therefore never point that user at the checkout or at its venv: they use
:func:`stage`, a world-readable copy of the checkout's source files with a venv of its own,
built as repo2docker builds Binder's (environment.yml's pip list, then binder/postBuild, an
editable install of the copy). The venv is kept between runs, keyed by the dependency files and
the checkout's path; the copy is refreshed every session, so it always holds the code under test.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from portbinding.host import apt_install
from tests.support.checkout import REPO, copy_checkout

STAGE_ROOT = Path("/var/tmp/portbinding-staged")  # enterable by every user, unlike /root or /tmp/tmp.X
# Debian 12's 3.11 (the version environment.yml pins): the test's own interpreter may live where
# other users cannot read it (a pyenv under /root).
SYSTEM_PYTHON = "/usr/bin/python3"


@dataclass(frozen=True)
class Staged:
    """A copy of the checkout and a venv, both readable by every user."""

    checkout: Path
    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def cli(self) -> list[str]:
        """The ``portbinding`` command, as another user runs it from the staged venv."""
        return [str(self.python), "-m", "portbinding"]


def binder_pip_list(repo: Path = REPO) -> list[str]:
    """environment.yml's pip requirements: what Binder (and this venv) installs."""
    environment = yaml.safe_load((repo / "binder" / "environment.yml").read_text())
    return [str(r) for entry in environment["dependencies"] if isinstance(entry, dict) for r in entry["pip"]]


def stage(repo: Path = REPO) -> Staged:
    """The staged copy of ``repo``, refreshed, and its venv (built once per set of dependencies)."""
    if os.geteuid() != 0:
        raise PermissionError("staging a copy for another user needs root; run this under make test")
    _forget_removed_checkouts()
    key = hashlib.sha256(
        (repo / "binder" / "environment.yml").read_bytes()
        + (repo / "pyproject.toml").read_bytes()
        + bytes(repo)
    ).hexdigest()[:16]
    place = STAGE_ROOT / key
    place.mkdir(parents=True, exist_ok=True)
    (place / "origin").write_text(str(repo))
    staged = Staged(copy_checkout(place / "checkout", readable=True, repo=repo), place / "venv")
    if not (staged.venv / ".complete").exists():
        _build_venv(staged, repo)
    for folder in (STAGE_ROOT, place):
        folder.chmod(0o755)
    return staged


def _build_venv(staged: Staged, repo: Path) -> None:
    shutil.rmtree(staged.venv, ignore_errors=True)
    command = [SYSTEM_PYTHON, "-m", "venv", str(staged.venv)]
    if subprocess.run(command, capture_output=True, timeout=120, check=False).returncode != 0:
        # Debian ships venv support separately.
        shutil.rmtree(staged.venv, ignore_errors=True)
        apt_install("python3-venv")
        subprocess.run(command, check=True, timeout=120)
    pip = [str(staged.python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, *binder_pip_list(repo)], check=True, timeout=900)
    env = {**os.environ, "PATH": f"{staged.venv / 'bin'}:{os.environ['PATH']}"}
    subprocess.run(
        [str(staged.checkout / "binder" / "postBuild")], cwd=staged.checkout, env=env, check=True, timeout=300
    )
    (staged.venv / ".complete").touch()


def _forget_removed_checkouts() -> None:
    """Remove staged copies whose checkout is gone (a clone in ``mktemp -d``, since deleted)."""
    if not STAGE_ROOT.is_dir():
        return
    for place in STAGE_ROOT.iterdir():
        origin = place / "origin"
        if origin.is_file() and not Path(origin.read_text()).exists():
            shutil.rmtree(place, ignore_errors=True)


def bare_env(**extra: str) -> dict[str, str]:
    """A minimal environment for another user: no venv on PATH, a HOME it can write."""
    return {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "XDG_RUNTIME_DIR": "/tmp/pbl-no-runtime", **extra}


def run_as(
    args: list[str],
    env: dict[str, str],
    *,
    user: str | None = "nobody",
    hide_sockets: bool = False,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run ``args`` as ``user`` (None: as root), from /, with ``env`` only.

    ``hide_sockets`` runs it in a private mount namespace with an empty /run, so the default
    Docker socket is not there: a machine with no engine, without stopping ours.
    """
    command = list(args)
    if user is not None:
        command = ["setpriv", f"--reuid={user}", f"--regid={_group_of(user)}", "--clear-groups", *command]
    if hide_sockets:
        inner = " ".join(shlex.quote(word) for word in command)
        command = ["unshare", "--mount", "--propagation", "private"]
        command += ["sh", "-c", f"mount -t tmpfs tmpfs /run && exec {inner}"]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=env, cwd="/", check=False
    )


def _group_of(user: str) -> str:
    return "nogroup" if user == "nobody" else user
