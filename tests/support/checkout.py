"""The checkout under test, and copies of it that another user (or a fresh venv) can use.

``REPO`` is defined here once. A checkout may live where nobody else can read it (``git clone``
into /root/x or ``mktemp -d``), so a test that runs something as another user, or installs the
project the ordinary way, works on a copy of the source files rather than on the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def source_files(repo: Path = REPO) -> list[Path]:
    """The checkout's files as git sees them: tracked, plus untracked ones it does not ignore."""
    listed = subprocess.run(
        ["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    names = [name for name in listed.stdout.decode().split("\0") if name]
    # A tracked file deleted in the working tree is listed too; the copy follows the working tree.
    return [Path(name) for name in names if (repo / name).is_file()]


def copy_checkout(target: Path, *, readable: bool = False, repo: Path = REPO) -> Path:
    """Copy the checkout's source files into ``target`` (created; replaced if it exists).

    ``readable`` makes every file readable and every folder enterable by all users, whatever
    the umask of the clone was: the copy is for a user who could not enter the checkout.
    """
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for relative in source_files(repo):
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / relative, destination)
    if readable:
        make_readable(target)
    return target


def make_readable(root: Path) -> None:
    """chmod a+rX below ``root`` (and ``root`` itself): readable files, enterable folders."""
    for folder, _, files in os.walk(root):
        os.chmod(folder, os.stat(folder).st_mode | 0o555)
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                mode = os.stat(path).st_mode
                os.chmod(path, mode | 0o444 | (0o111 if mode & 0o100 else 0))
