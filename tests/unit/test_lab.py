"""The learner's workspace: a copy made once, never overwritten, reset without losing anything."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from portbinding import lab
from portbinding.errors import PortBindingError
from portbinding.paths import course_material

LESSON = Path("notebooks/00-start-here.ipynb")
EXERCISE = Path("exercises/ex01-unreachable-notebook/ex01-unreachable-notebook.ipynb")


def test_the_first_start_copies_the_lessons_and_exercises(tmp_path: Path) -> None:
    """Every lesson and exercise notebook is copied, plus the Validate button's settings."""
    made = lab.prepare(tmp_path / "ws")
    source = course_material()
    for part in lab.PARTS:
        wanted = {
            p.relative_to(source)
            for p in (source / part).rglob("*.ipynb")
            if ".ipynb_checkpoints" not in str(p)
        }
        have = {p.relative_to(made.root) for p in (made.root / part).rglob("*.ipynb")}
        assert wanted <= have, f"{part}/ was not copied whole: missing {wanted - have}"
    assert made.start_page == made.root / LESSON and made.start_page.is_file(), made.start_page
    config = (made.root / "nbgrader_config.py").read_text()
    assert "c.Execute.timeout = 180" in config, config


def test_a_second_start_keeps_the_learners_work_and_adds_what_is_new(tmp_path: Path) -> None:
    """A file the learner changed is never overwritten; a file they deleted comes back."""
    root = tmp_path / "ws"
    lab.prepare(root)
    (root / LESSON).write_text("my answers")
    (root / EXERCISE).unlink()
    again = lab.prepare(root)
    assert (root / LESSON).read_text() == "my answers", "a start overwrote the learner's lesson"
    assert (root / EXERCISE).is_file() and again.copied == (root / EXERCISE,), again.copied


def test_reset_sets_the_old_workspace_aside_and_starts_afresh(tmp_path: Path) -> None:
    """--reset keeps the old copy under another name, with the learner's work in it."""
    root = tmp_path / "ws"
    lab.prepare(root)
    (root / LESSON).write_text("my answers")
    fresh = lab.prepare(root, reset=True)
    assert fresh.set_aside is not None and (fresh.set_aside / LESSON).read_text() == "my answers"
    assert (root / LESSON).read_bytes() == (course_material() / LESSON).read_bytes(), "not afresh"


def test_the_course_folder_itself_is_refused_as_a_workspace() -> None:
    """Serving the tracked files is the bug the workspace exists to avoid: a clear error instead."""
    with pytest.raises(PortBindingError, match="course's own notebooks/ folder"):
        lab.prepare(course_material())


def test_the_jupyter_command_serves_the_workspace_and_opens_lesson_00(tmp_path: Path) -> None:
    """Root folder, start page and the address asked for; extra arguments go last."""
    made = lab.prepare(tmp_path / "ws")
    command = lab.jupyter_command(made, host="127.0.0.1", port=8890, extra=["--allow-root"])
    assert f"--ServerApp.root_dir={made.root}" in command, command
    assert "--LabApp.default_url=/lab/tree/notebooks/00-start-here.ipynb" in command, command
    assert "--ServerApp.port_retries=0" in command and command[-1] == "--allow-root", command


def test_portbinding_lab_loads_the_extension_that_keeps_validate_off_the_event_loop(tmp_path: Path) -> None:
    """nbgrader's Validate handler blocks the server while the checks run; the course's start
    command loads the extension that makes it wait on a thread, and the extension does so."""
    import inspect

    from nbgrader.server_extensions.validate_assignment.handlers import ValidateAssignmentHandler

    from portbinding import validate_server

    made = lab.prepare(tmp_path / "ws")
    command = lab.jupyter_command(made, host="127.0.0.1", port=8890)
    assert any(validate_server.MODULE in part for part in command), f"not loaded: {command}"
    assert validate_server.patch_validate_handler(), "nbgrader's Validate handler was not found"
    assert inspect.iscoroutinefunction(inspect.unwrap(ValidateAssignmentHandler.post)), (
        "Validate's handler still blocks the server's event loop"
    )


def test_a_learners_jupyterlab_leaves_out_nbgrader_s_instructor_tools(tmp_path: Path) -> None:
    """No Create Assignment panel or formgrader for a learner: the workspace's own Jupyter config
    folder disables them, as the hub does for students."""
    from portbinding.hub.config import INSTRUCTOR_LAB_PLUGINS, INSTRUCTOR_SERVER_EXTENSIONS

    made = lab.prepare(tmp_path / "ws")
    folder = made.root / lab.JUPYTER_CONFIG
    page = json.loads((folder / "labconfig" / "page_config.json").read_text())
    assert all(page["disabledExtensions"].get(name) is True for name in INSTRUCTOR_LAB_PLUGINS), page
    env = lab.jupyter_env(made)
    assert env["JUPYTER_CONFIG_PATH"].split(os.pathsep)[0] == str(folder), env["JUPYTER_CONFIG_PATH"]
    command = " ".join(lab.jupyter_command(made, host="127.0.0.1", port=8890))
    assert all(f"'{name}': False" in command for name in INSTRUCTOR_SERVER_EXTENSIONS), command
