"""``nbgrader collect`` that copies submissions without following the links students plant.

nbgrader's own ``ExchangeCollect.do_copy`` is ``shutil.copytree``, which follows symlinks: run
by the instructor (root, on a grading machine), it copied the file a link in a student's
submission pointed at -- ``/etc/shadow`` -- into ``submitted/``, and the kernel printed it.
This class keeps nbgrader's collect (which submission, timestamps, ``--update``, the
ignore/include/size options) and replaces only the copy with ``safecopy.copy_tree``: regular
files and folders owned by whoever owns the submission's folder in the exchange (the
student), never through a link, within nbgrader's size limits, with their own modes.

A submission is also collected only from its own student: nbgrader takes the student id from
the name of the folder in ``inbound/`` (``ID+ASSIGNMENT+TIMESTAMP+RANDOM``), which every student
may write, and only *warns* when the folder's owner is someone else -- so alice's
``bob+ex01+<a later timestamp>+x`` replaced bob's submission (and an id like ``=HYPERLINK(..)``
reached the gradebook and the LMS export). Here a folder not owned by the account its name
claims is refused, with an error in the log (``--ExchangeCollect.check_owner=False`` turns the
check off, as in nbgrader).

The submission time is the student's claim too (``timestamp.txt``, and the folder's name),
written on the student's side: a late submission saying it came in on time escaped the late
penalty. The kernel's change times (ctime) of the submitted folder and files cannot be set
back by their owner (moving a folder in changes its ctime too), so when the newest of them
is more than ``CLAIM_TOLERANCE`` after the claim, ``timestamp.txt`` in submitted/ says when the
submission was really made, and the log says so.

Configured in grader/nbgrader_config.py::

    c.ExchangeFactory.collect = "portbinding.grading.exchange.SafeExchangeCollect"
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import pwd
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nbgrader.exchange.default.collect import ExchangeCollect
from nbgrader.utils import parse_utc

from portbinding.grading.safecopy import CopyRefused, CopyRules, copy_tree

# How much later than its claimed time a submission may have been written (copying it takes time).
CLAIM_TOLERANCE = timedelta(minutes=2)
_REFUSED = "\0refused:"  # no login name holds a NUL: a refused record groups on its own, then goes


class SafeExchangeCollect(ExchangeCollect):  # type: ignore[misc]  # nbgrader is untyped
    """nbgrader's collect, copying only the student's own regular files (see the module docstring)."""

    src_records: list[dict[str, Any]]  # set by nbgrader's init_src

    def _path_to_record(self, path: str) -> dict[str, Any]:
        record: dict[str, Any] = super()._path_to_record(path)
        if not self.check_owner:
            return record
        claimed, owner = str(record["username"]), _owner(path)
        if owner != claimed:
            self.log.error(
                "Not collecting %s: it claims to be %s's submission, but %s made it (another student "
                "submitting in their name?). Ask %s to submit again themselves.",
                path, claimed, owner, claimed,
            )  # fmt: skip
            record["username"] = _REFUSED + path
        return record

    def init_src(self) -> None:
        super().init_src()  # picks each student's latest record: refused ones are groups of their own
        self.src_records = [r for r in self.src_records if not str(r["username"]).startswith(_REFUSED)]

    def do_copy(self, src: str, dest: str, log: Any = None) -> None:
        coursedir = self.coursedir
        rules = CopyRules(
            max_file_bytes=int(coursedir.max_file_size) * 1000,
            max_total_bytes=int(coursedir.max_dir_size) * 1000,
            max_files=10_000,
            max_depth=16,
            owner=-1,  # the owner of the submission's folder, i.e. the student who submitted it
            ignore=tuple(coursedir.ignore),
            over_limit_refuses=False,
        )
        include = list(coursedir.include)
        try:
            copied = copy_tree(
                Path(src),
                Path(dest),
                rules,
                accept=lambda relative, _info: any(
                    fnmatch.fnmatch(os.path.basename(relative), glob) for glob in include
                ),
            )
        except (CopyRefused, OSError) as error:
            self.log.error("Not collecting %s: %s", src, error)
            raise RuntimeError(f"Not collecting {src}: {error}") from error
        for relative, why in copied.skipped:
            self.log.warning("Left out of the collected submission %s: %s (%s)", src, relative, why)
        self._vouch_for_time(Path(src), Path(dest), copied.files)
        if coursedir.groupshared:  # what nbgrader's own copy does for shared course folders
            for folder, _, files in os.walk(dest):
                os.chmod(folder, (os.stat(folder).st_mode | 0o2770) & 0o2777)
                for name in files:
                    path = os.path.join(folder, name)
                    os.chmod(path, (os.stat(path).st_mode | 0o660) & 0o777)

    def _vouch_for_time(self, src: Path, dest: Path, files: list[str]) -> None:
        """Make submitted/'s timestamp.txt no earlier than the submission's files really are."""
        made = max([_changed(src), *(_changed(src / relative) for relative in files)])
        stamp = dest / "timestamp.txt"
        claimed: datetime | None = None
        with contextlib.suppress(OSError, ValueError, OverflowError):
            claimed = parse_utc(stamp.read_text().strip())
        if claimed is not None and made - claimed <= CLAIM_TOLERANCE:
            return
        written = made.strftime("%Y-%m-%d %H:%M:%S.%f UTC")
        self.log.warning(
            "%s says it was submitted at %s, but its files were written at %s: timestamp.txt now says %s "
            "(late penalties go by it).",
            src, claimed or "no time", written, written,
        )  # fmt: skip
        with contextlib.suppress(FileNotFoundError):
            stamp.unlink()  # a fresh file, not one the copy made
        stamp.write_text(written)


def _changed(path: Path) -> datetime:
    """When ``path`` itself last changed (its ctime: its owner cannot set it back), as naive UTC."""
    try:
        moment = datetime.fromtimestamp(os.lstat(path).st_ctime, UTC)
    except OSError:  # gone since it was copied: the other files still tell
        return datetime.min
    return moment.replace(tzinfo=None)


def _owner(path: str) -> str:
    """The login name of whoever owns ``path`` itself (a link is its maker's), or "uid N"."""
    try:
        uid = os.lstat(path).st_uid
    except OSError:
        return "nobody known"
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"
