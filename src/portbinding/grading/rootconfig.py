"""The nbgrader configuration root grades with: the package's own, the course's settings read as data.

nbgrader executes its config file as Python. After the hand-over (``course.hand_over``) the
course folder and its ``nbgrader_config.py`` belong to the instructor's account, while
``portbinding grade`` runs as root: executing that file would give root to whoever can write
it. So root never runs it. The course's file is *parsed* (``ast``), never executed, and only the
few settings a course may change (``COURSE_SETTINGS``) are taken from it, each only as a literal
of the expected type. Everything else -- the sandboxed Execute step, the sanitizer, the exchange
class -- is the package's, written as JSON (traitlets reads that as data) into the root-only
scratch course, which holds no Python file for nbgrader to run or import.

Plain ``nbgrader`` commands still execute the course's file: run them as the instructor's
account, never as root (``config_owner_warning`` says so in ``doctor`` and ``grade``).
"""

from __future__ import annotations

import ast
import json
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portbinding.errors import PortBindingError

CONFIG_NAME = "nbgrader_config.py"
# The settings a course may change, and the type each must have; any other line is the package's.
COURSE_SETTINGS: dict[tuple[str, str], type] = {
    ("CourseDirectory", "course_id"): str,
    ("Execute", "timeout"): int,
    ("LimitOutput", "max_lines"): int,
    ("LimitOutput", "max_traceback"): int,
}
DEFAULTS: dict[tuple[str, str], Any] = {
    ("CourseDirectory", "course_id"): "port-binding-lab",
    ("Execute", "timeout"): 180,
}


class CourseConfigError(PortBindingError):
    """The course's nbgrader_config.py cannot be read (as data) at all."""

    bad_input = True


@dataclass(frozen=True)
class CourseSettings:
    """What the course's config sets among ``COURSE_SETTINGS``, and the lines root left out."""

    values: dict[tuple[str, str], Any] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()


def read_course_settings(root: Path) -> CourseSettings:
    """The course settings in ``root/nbgrader_config.py``, read without running a line of it."""
    path = root / CONFIG_NAME
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError) as error:
        raise CourseConfigError(
            f"{path} could not be read as a Python file ({error}); nothing was graded.",
            hint="fix the file (nbgrader itself would fail on it too), then grade again",
        ) from error
    values: dict[tuple[str, str], Any] = {}
    ignored: list[str] = []
    for node in tree.body:
        if not isinstance(node, ast.Assign | ast.AnnAssign):
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        key = _setting(targets[0]) if len(targets) == 1 else None
        if key is None or key not in COURSE_SETTINGS or node.value is None:
            if key is not None and key not in _PACKAGE_KEYS:
                ignored.append(f"c.{key[0]}.{key[1]} (line {node.lineno}): not a setting a course may change")
            continue
        try:
            value = ast.literal_eval(node.value)
        except ValueError:
            ignored.append(f"c.{key[0]}.{key[1]} (line {node.lineno}): not a literal value")
            continue
        wanted = COURSE_SETTINGS[key]
        if type(value) is not wanted:  # bool is an int subclass: only the exact type
            ignored.append(f"c.{key[0]}.{key[1]} (line {node.lineno}): not a {wanted.__name__}")
            continue
        values[key] = value
    return CourseSettings(values, tuple(ignored))


def _setting(target: ast.expr) -> tuple[str, str] | None:
    """``c.Class.trait`` as ("Class", "trait"); None for any other target."""
    if (
        isinstance(target, ast.Attribute)
        and isinstance(target.value, ast.Attribute)
        and isinstance(target.value.value, ast.Name)
        and target.value.value.id == "c"
    ):
        return target.value.attr, target.attr
    return None


def grading_config(settings: CourseSettings) -> dict[str, dict[str, Any]]:
    """The whole nbgrader config root grades with: the package's, and the course's own settings."""
    from portbinding.grading.execute import autograde_preprocessors  # nbgrader: not for `doctor`

    config: dict[str, dict[str, Any]] = {
        "CourseDirectory": {"source_directory": "source"},
        # Learner code never runs next to the engine: every notebook runs in the grading sandbox.
        "Autograde": {"autograde_preprocessors": autograde_preprocessors()},
        "HTMLExporter": {
            "preprocessors": ["portbinding.grading.sanitize.SanitizeNotebook"],
            "sanitize_html": True,
        },
        "ExchangeFactory": {"collect": "portbinding.grading.exchange.SafeExchangeCollect"},
    }
    for (section, trait), value in {**DEFAULTS, **settings.values}.items():
        config.setdefault(section, {})[trait] = value
    return config


# Lines of the shipped config that the package sets itself: not worth a warning when left out.
_PACKAGE_KEYS = {
    ("CourseDirectory", "root"),
    ("CourseDirectory", "source_directory"),
    ("Autograde", "autograde_preprocessors"),
    ("HTMLExporter", "preprocessors"),
    ("HTMLExporter", "sanitize_html"),
    ("ExchangeFactory", "collect"),
}


def write_grading_config(folder: Path, settings: CourseSettings) -> Path:
    """Write the config into ``folder`` (a scratch course) as ``nbgrader_config.json``; its path."""
    path = folder / "nbgrader_config.json"
    path.write_text(json.dumps(grading_config(settings), indent=1, sort_keys=True))
    return path


def config_owner_warning(root: Path) -> str | None:
    """A warning when someone besides root can change the course's config; None when only root can."""
    path = root / CONFIG_NAME
    try:
        info = path.stat()
    except OSError:
        return None
    writable = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if info.st_uid == 0 and not writable:
        return None
    who = f"uid {info.st_uid}" if info.st_uid != 0 else "its group or everyone"
    return (
        f"{path} can be changed by {who}. `portbinding grade` reads only the course's settings "
        f"from it as data ({', '.join(f'{s}.{t}' for s, t in COURSE_SETTINGS)}) and never runs it; "
        "but plain `nbgrader` commands execute it as Python: run them (formgrader, generate_feedback, "
        "collect) as the instructor's account, never as root."
    )


def course_config_warning(folder: Path | None = None) -> str | None:
    """``config_owner_warning`` for the course in ``folder`` (default: the current one), if it is one."""
    root = folder or Path.cwd()
    return config_owner_warning(root) if (root / CONFIG_NAME).is_file() else None
