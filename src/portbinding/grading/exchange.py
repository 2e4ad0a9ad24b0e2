"""``nbgrader collect`` that copies submissions without following the links students plant.

nbgrader's own ``ExchangeCollect.do_copy`` is ``shutil.copytree``, which follows symlinks: run
by the instructor (root, on a grading machine), it copied the file a link in a student's
submission pointed at -- ``/etc/shadow`` -- into ``submitted/``, and the kernel printed it.
This class keeps nbgrader's collect (which submission, timestamps, ``--update``, the
ignore/include/size options) and replaces only the copy with ``safecopy.copy_tree``: regular
files and folders owned by whoever owns the submission's folder in the exchange (the
student), never through a link, within nbgrader's size limits, with their own modes.

Configured in grader/nbgrader_config.py::

    c.ExchangeFactory.collect = "portbinding.grading.exchange.SafeExchangeCollect"
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import Any

from nbgrader.exchange.default.collect import ExchangeCollect

from portbinding.grading.safecopy import CopyRefused, CopyRules, copy_tree


class SafeExchangeCollect(ExchangeCollect):  # type: ignore[misc]  # nbgrader is untyped
    """nbgrader's collect, copying only the student's own regular files (see the module docstring)."""

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
        if coursedir.groupshared:  # what nbgrader's own copy does for shared course folders
            for folder, _, files in os.walk(dest):
                os.chmod(folder, (os.stat(folder).st_mode | 0o2770) & 0o2777)
                for name in files:
                    path = os.path.join(folder, name)
                    os.chmod(path, (os.stat(path).st_mode | 0o660) & 0o777)
