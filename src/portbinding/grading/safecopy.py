"""Copying a submission's files as root without being led anywhere by them.

A submission is a folder a student controls. Copied naively by root (``shutil.copytree``,
``shutil.copy``, ``os.walk``), a symlink in it is followed: ``nbgrader collect`` put a copy of
``/etc/shadow`` into ``submitted/`` that way, and the kernel printed it. Every copy of learner
files in the grader goes through ``copy_tree``, which takes only

* regular files and folders -- never symlinks, devices, fifos or sockets; each opened with
  ``O_NOFOLLOW`` relative to its parent folder's descriptor, so swapping a folder for a link
  between the check and the open leads nowhere;
* owned by the owner of the submission's own folder (a hard link to someone else's file is
  owned by them), when ``owner`` says so;
* within size, count and depth limits;

and writes them with their own permission bits (not root's umask, never setuid/setgid), owned
by whom the caller says. Standard library only: the jail uses it as root.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
MODE_BITS = 0o777  # permission bits only: setuid, setgid and sticky are never copied


class CopyRefused(Exception):
    """The submission is over a limit (the message says which, for the learner)."""


@dataclass(frozen=True)
class CopyRules:
    """What may be copied. ``owner``: None (anyone), -1 (whoever owns the source folder), or a uid."""

    max_file_bytes: int = 20 * 2**20
    max_total_bytes: int = 50 * 2**20
    max_files: int = 200
    max_depth: int = 8
    owner: int | None = -1
    skip_notebooks: bool = False
    skip_hidden: bool = False
    ignore: tuple[str, ...] = ()  # names (globs) never copied, like nbgrader's CourseDirectory.ignore
    over_limit_refuses: bool = True  # False: files over a limit are skipped and reported instead


@dataclass
class Copied:
    """What a copy did: the files it wrote (relative paths) and what it left out, and why."""

    files: list[str] = field(default_factory=list)
    total_bytes: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)


def copy_tree(
    source: Path,
    target: Path,
    rules: CopyRules,
    *,
    uid: int | None = None,
    gid: int | None = None,
    extra_mode: int = 0,
    accept: Callable[[str, os.stat_result], bool] | None = None,
) -> Copied:
    """Copy ``source``'s regular files and folders into ``target`` (created) under ``rules``.

    ``uid``/``gid`` own what is written (default: the caller); ``extra_mode`` is or-ed into
    each file's mode (the sandbox adds owner read/write). ``accept(relative path, stat)`` may
    turn down files the rules allow. Raises CopyRefused when a limit is passed (unless the
    rules say to skip), and OSError when ``source`` itself is not a real folder.
    """
    copied = Copied()
    top = os.open(source, _DIR_FLAGS)  # the submission folder itself must not be a link either
    try:
        owner = os.fstat(top).st_uid if rules.owner == -1 else rules.owner
        target.mkdir(parents=True, exist_ok=True)
        _own(target, uid, gid, None)
        _copy_folder(top, target, "", 0, rules, owner, copied, uid, gid, extra_mode, accept)
    finally:
        os.close(top)
    return copied


def _copy_folder(
    folder: int,
    target: Path,
    prefix: str,
    depth: int,
    rules: CopyRules,
    owner: int | None,
    copied: Copied,
    uid: int | None,
    gid: int | None,
    extra_mode: int,
    accept: Callable[[str, os.stat_result], bool] | None,
) -> None:
    for name in sorted(os.listdir(folder)):
        relative = prefix + name
        if rules.skip_hidden and name.startswith("."):
            continue
        if any(fnmatch.fnmatch(name, pattern) for pattern in rules.ignore):
            continue
        info = os.stat(name, dir_fd=folder, follow_symlinks=False)
        if owner is not None and info.st_uid != owner:
            copied.skipped.append((relative, "owned by someone else"))
            continue
        if stat.S_ISDIR(info.st_mode):
            if depth + 1 >= rules.max_depth:
                copied.skipped.append((relative, "nested too deeply"))
                continue
            try:
                inner = os.open(name, _DIR_FLAGS, dir_fd=folder)
            except OSError:
                copied.skipped.append((relative, "not a folder any more"))
                continue
            try:
                (target / name).mkdir(exist_ok=True)
                _own(target / name, uid, gid, (info.st_mode & MODE_BITS) | 0o700)
                _copy_folder(inner, target / name, relative + "/", depth + 1, rules, owner, copied, uid, gid,
                             extra_mode, accept)  # fmt: skip
            finally:
                os.close(inner)
            continue
        if not stat.S_ISREG(info.st_mode):
            copied.skipped.append((relative, "not a regular file"))
            continue
        if rules.skip_notebooks and name.endswith(".ipynb"):
            continue
        if accept is not None and not accept(relative, info):
            copied.skipped.append((relative, "not part of the submission"))
            continue
        problem = _over_limit(relative, info.st_size, copied, rules)
        if problem:
            if rules.over_limit_refuses:
                raise CopyRefused(problem)
            copied.skipped.append((relative, problem))
            continue
        _copy_file(folder, name, target / name, info, uid, gid, extra_mode)
        copied.files.append(relative)
        copied.total_bytes += info.st_size


def _over_limit(relative: str, size: int, copied: Copied, rules: CopyRules) -> str | None:
    if size > rules.max_file_bytes:
        most = rules.max_file_bytes / 2**20
        return f"{relative} is {size / 2**20:.1f} MB; files of at most {most:g} MB are taken"
    if copied.total_bytes + size > rules.max_total_bytes or len(copied.files) + 1 > rules.max_files:
        return (
            f"the submission is larger than {rules.max_total_bytes / 2**20:g} MB or {rules.max_files} files; "
            "submit only the assignment's files"
        )
    return None


def _copy_file(
    folder: int,
    name: str,
    destination: Path,
    info: os.stat_result,
    uid: int | None,
    gid: int | None,
    extra_mode: int,
) -> None:
    source = os.open(name, _FILE_FLAGS, dir_fd=folder)
    try:
        opened = os.fstat(source)
        if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino):
            return  # swapped between the look and the open: not what was checked
        with contextlib.suppress(FileNotFoundError):
            destination.unlink()
        out = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            remaining = info.st_size  # never more than was checked, even if the file grows meanwhile
            while remaining > 0:
                chunk = os.read(source, min(remaining, 1 << 20))
                if not chunk:
                    break
                os.write(out, chunk)
                remaining -= len(chunk)
            os.fchmod(out, (info.st_mode & MODE_BITS) | extra_mode)
            if uid is not None or gid is not None:
                os.fchown(out, -1 if uid is None else uid, -1 if gid is None else gid)
        finally:
            os.close(out)
    finally:
        os.close(source)


def _own(path: Path, uid: int | None, gid: int | None, mode: int | None) -> None:
    if mode is not None:
        os.chmod(path, mode, follow_symlinks=False)
    if uid is not None or gid is not None:
        os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid, follow_symlinks=False)


def regular_file(base: Path, relative: str) -> os.stat_result | None:
    """The stat of ``base/relative`` if it is a regular file reached from ``base`` without any
    symlink on the way (``base`` itself is trusted), else None."""
    parts = [part for part in relative.split("/") if part not in ("", ".")]
    if not parts or ".." in parts:
        return None
    try:
        folder = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        for part in parts[:-1]:
            inner = os.open(part, _DIR_FLAGS, dir_fd=folder)
            os.close(folder)
            folder = inner
        info = os.stat(parts[-1], dir_fd=folder, follow_symlinks=False)
    except OSError:
        return None
    finally:
        os.close(folder)
    return info if stat.S_ISREG(info.st_mode) else None
