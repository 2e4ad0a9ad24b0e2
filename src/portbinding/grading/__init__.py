"""Graded exercises: checks that judge answers by running them, and a sandboxed autograder.

Learner-facing (used in exercise tests): ``check_fix``, ``check_cause``, ``check_config``,
``check_image``, ``check_compose`` and ``check_compose_file`` (ex04), ``check_readiness`` (run in
the kernel: no engine) and their ``CheckResult``.
Instructor-facing: ``portbinding grade`` / ``portbinding report`` (see ``portbinding.grading.cli``)
and grader/README.md for the safety design.

Importing this package loads only the standard library: it runs inside the grading sandbox.
"""

from __future__ import annotations

from portbinding.grading.checks import (
    check_cause,
    check_compose,
    check_compose_file,
    check_config,
    check_fix,
    check_image,
)
from portbinding.grading.protocol import CheckResult
from portbinding.grading.readiness import check_readiness

__all__ = [
    "CheckResult",
    "check_cause",
    "check_compose",
    "check_compose_file",
    "check_config",
    "check_fix",
    "check_image",
    "check_readiness",
]
