"""Setting up (and taking down) a class on one machine: accounts, exchange, course, proxy, config.

``set_up(settings)`` is idempotent, as root:

* a Unix user per roster member (students are not in ``docker``: the host's engine is not
  theirs), their home 0700 with the lessons copied in, the instructor's with the nbgrader
  course (``portbinding course init``) and its ``~/.jupyter/nbgrader_config.py``;
* passwords for new members (hashes kept, plaintexts handed out once, see ``roster``);
* nbgrader's exchange as its documentation asks: a root-owned folder everyone may write
  (here also sticky, so nobody removes what another made), and a Jupyter config folder per
  role naming it (students get no formgrader);
* configurable-http-proxy from npm in the hub's own prefix, the lesson image archive, and
  ``jupyterhub_config.py``.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from portbinding import validate_server
from portbinding.errors import PortBindingError
from portbinding.grading.course import lay_out_course
from portbinding.hub import engines, limits
from portbinding.hub.config import INSTRUCTOR_LAB_PLUGINS, INSTRUCTOR_SERVER_EXTENSIONS, HubSettings
from portbinding.hub.roster import Credentials, Member, read_roster
from portbinding.paths import course_material

PROXY_PACKAGE = "configurable-http-proxy@5"
EXCHANGE_MODE = 0o1777
Progress = Callable[[str], None]


class HubSetupError(PortBindingError):
    """The hub cannot be set up here as asked."""


def handout_path(settings: HubSettings) -> Path:
    return settings.state / "passwords-to-hand-out.csv"


def course_root(member: Member) -> Path:
    """The instructor's nbgrader course folder."""
    return Path(pwd.getpwnam(member.id).pw_dir) / "course" / "grader"


def set_up(settings: HubSettings, *, progress: Progress = lambda _: None) -> list[str]:
    """Everything the hub needs before ``jupyterhub`` starts; the ids that got a new password."""
    if os.geteuid() != 0:
        raise HubSetupError(
            "Setting up a hub needs root: it creates Unix users and runs their servers as them.",
            hint="run `sudo make hub ROSTER=...` (or `sudo portbinding hub init ...`)",
        )
    _require_readable_venv(Path(settings.venv))
    members = read_roster(Path(settings.roster))
    settings.save()
    for member in members:
        _ensure_account(member, settings, progress)
    issued = Credentials(settings.state / "credentials.json").issue(members, handout_path(settings))
    if issued:
        progress(
            f"New passwords for {len(issued)} member(s) in {handout_path(settings)} (hand out, then delete)."
        )
    _ensure_exchange(Path(settings.exchange))
    _write_jupyter_config(settings)
    _ensure_proxy(settings.state / "proxy", progress)
    if settings.images:
        progress(f"Saving the lesson images ({', '.join(settings.images)}) once for all students...")
        engines.image_archive(settings.state, settings.images)
    config = settings.state / "jupyterhub_config.py"
    config.write_text(
        "# Written by `portbinding hub init`; the settings are in hub.json beside it.\n"
        "from portbinding.hub.config import configure\n\n"
        f"configure(c, {str(settings.path)!r})  # noqa: F821 (c is JupyterHub's)\n"
    )
    return issued


def tear_down(settings: HubSettings, *, delete_users: bool = False) -> None:
    """Stop every member's engine and remove their cgroups; with ``delete_users``, the accounts too."""
    members = read_roster(Path(settings.roster))
    for member in members:
        engines.stop_engine(member.id)
        limits.remove(settings.name, member.id)
        if delete_users:
            _delete_account(member.id)
    if delete_users:
        shutil.rmtree(settings.state, ignore_errors=True)


# ------------------------------------------------------------------------------ accounts


def _ensure_account(member: Member, settings: HubSettings, progress: Progress) -> None:
    try:
        entry = pwd.getpwnam(member.id)
    except KeyError:
        progress(f"Creating the Unix user {member.id} ({member.role})...")
        _run(
            [
                "useradd",
                "--create-home",
                "--shell",
                "/bin/bash",
                "--user-group",
                "--comment",
                member.name.replace(":", " "),
                member.id,
            ]
        )
        entry = pwd.getpwnam(member.id)
    if _group_exists("docker") and member.id in grp.getgrnam("docker").gr_mem:
        raise HubSetupError(
            f"{member.id} is in the `docker` group: that is root on this machine, not a student engine.",
            hint=f"`gpasswd -d {member.id} docker`, then run this again",
        )
    home = Path(entry.pw_dir)
    os.chmod(home, 0o700)
    if member.is_instructor:
        if not (home / "course" / "grader").exists():
            lay_out_course(home / "course")
        config = home / ".jupyter" / "nbgrader_config.py"
        config.parent.mkdir(exist_ok=True)
        config.write_text(
            "# Written by `portbinding hub init`: the formgrader's course.\n"
            f"c.CourseDirectory.root = {str(home / 'course' / 'grader')!r}\n"
        )
        _chown_tree(home / ".jupyter", entry)
        _chown_tree(home / "course", entry)
    else:
        lessons = home / "lessons"
        if not lessons.exists():
            shutil.copytree(
                course_material() / "notebooks",
                lessons,
                ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
            )
            _chown_tree(lessons, entry)


def _delete_account(user: str) -> None:
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return
    subprocess.run(["userdel", "--remove", user], capture_output=True, timeout=60, check=False)
    shutil.rmtree(f"/run/user/{entry.pw_uid}", ignore_errors=True)
    for path in (Path("/etc/subuid"), Path("/etc/subgid")):
        # usermod added the ranges; userdel leaves them on some releases.
        lines = path.read_text().splitlines() if path.exists() else []
        kept = [line for line in lines if not line.startswith(f"{user}:")]
        if kept != lines:
            path.write_text("".join(f"{line}\n" for line in kept))


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def _chown_tree(root: Path, entry: pwd.struct_passwd) -> None:
    for path in [root, *root.rglob("*")]:
        os.lchown(path, entry.pw_uid, entry.pw_gid)


# ------------------------------------------------------------------------------ exchange and config


def _ensure_exchange(exchange: Path) -> None:
    """nbgrader's exchange: root's, writable by all (its docs), sticky (nobody deletes others' files)."""
    exchange.mkdir(parents=True, exist_ok=True)
    os.chown(exchange, 0, 0)
    os.chmod(exchange, EXCHANGE_MODE)
    for parent in exchange.parents:
        if parent == Path("/"):
            break
        if os.stat(parent).st_mode & 0o005 != 0o005:
            raise HubSetupError(
                f"Students cannot reach the exchange {exchange}: {parent} is not open to others.",
                hint="put the exchange under a folder everyone may enter, e.g. /srv/nbgrader/exchange",
            )


def _write_jupyter_config(settings: HubSettings) -> None:
    """The Jupyter config folders named by JUPYTER_CONFIG_PATH: the exchange, per role."""
    (settings.state / "jupyter").mkdir(mode=0o755, exist_ok=True)
    os.chmod(settings.state / "jupyter", 0o755)
    for role in ("student", "instructor"):
        folder = settings.jupyter_dir(role)
        (folder / "labconfig").mkdir(parents=True, exist_ok=True)
        (folder / "nbgrader_config.py").write_text(
            "# Written by `portbinding hub init`: nbgrader's exchange for this class.\n"
            f"c.Exchange.root = {settings.exchange!r}\n"
            f"c.CourseDirectory.course_id = {settings.course_id!r}\n"
        )
        student = role == "student"
        extensions = {name: not student for name in INSTRUCTOR_SERVER_EXTENSIONS}
        extensions[validate_server.MODULE] = True  # Validate off the event loop, as `portbinding lab` does
        (folder / "jupyter_server_config.json").write_text(
            json.dumps({"ServerApp": {"jpserver_extensions": extensions}}, indent=1)
        )
        # No "would you like Jupyter news?" toast over a class's first lesson.
        disabled = {"@jupyterlab/apputils-extension:announcements": True}
        disabled.update({name: True for name in INSTRUCTOR_LAB_PLUGINS} if student else {})
        (folder / "labconfig" / "page_config.json").write_text(
            json.dumps({"disabledExtensions": disabled}, indent=1)
        )
        for path in [folder, *folder.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)


def _ensure_proxy(prefix: Path, progress: Progress) -> None:
    """configurable-http-proxy from npm, in the hub's own prefix (nothing installed system-wide)."""
    if (prefix / "node_modules" / ".bin" / "configurable-http-proxy").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        from portbinding.host import apt_install, debian_like

        if not debian_like():
            raise HubSetupError(
                "JupyterHub's proxy comes from npm, which is not installed.",
                hint="install Node.js and npm, then run this again",
            )
        progress("Installing Debian's npm (for configurable-http-proxy)...")
        apt_install("npm")
        npm = shutil.which("npm") or "npm"
    progress(f"Installing {PROXY_PACKAGE} from npm into {prefix}...")
    prefix.mkdir(parents=True, exist_ok=True)
    _run(
        [
            npm,
            "install",
            "--prefix",
            str(prefix),
            "--no-fund",
            "--no-audit",
            "--loglevel=error",
            PROXY_PACKAGE,
        ],
        timeout=600,
    )


def closed_folder(path: Path) -> Path | None:
    """The first folder on the way to ``path`` (itself included) that other users cannot enter."""
    for folder in [path, *path.parents]:
        if folder != Path("/") and os.stat(folder).st_mode & 0o005 != 0o005:
            return folder
    return None


def _require_readable_venv(venv: Path) -> None:
    """Students' servers run this venv's Python as the students: every folder up to it must let them.

    The interpreter counts too: a venv made from a pyenv Python under /root links to it.
    """
    for target in (venv, (venv / "bin" / "python").resolve().parent):
        closed = closed_folder(target)
        if closed is not None:
            raise HubSetupError(
                f"Students cannot use the Python environment {venv}: {closed} is closed to other users.",
                hint="install the course in a venv made from the system's Python where everyone may read "
                f"it (e.g. /usr/bin/python3 -m venv /opt/portbinding), or open {closed} (chmod o+rx)",
            )


def _run(argv: list[str], *, timeout: float = 120) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise HubSetupError(
            f"`{' '.join(argv[:4])} ...` failed (exit {result.returncode}): "
            f"{(result.stderr or result.stdout).strip()[-300:]}",
            hint="fix what the message names, then run this again",
        )
