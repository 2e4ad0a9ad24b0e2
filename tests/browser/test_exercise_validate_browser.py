"""A student opens exercise 01 from the course's start page, answers it, and clicks Validate.

The lab is the course's own start command on a fresh workspace (see tests/support/jupyterlab.py),
which opens lesson 00. From there the student goes through the file browser into exercises/,
types the three answers into their cells, saves, and clicks nbgrader's Validate button: the
visible checks run on their own engine and the dialog says the notebook passes. Screenshots go
to test-output/browser/validate-*.png.
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING

import pytest

from portbinding.paths import course_material
from portbinding.probe import wait_until
from tests.support.jupyterlab import STEP_TIMEOUT_MS, Lab, shot

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

EXERCISE = "ex01-unreachable-notebook"
VALIDATE_TIMEOUT_MS = 240_000  # three checks; one rebuilds an image
SERVER_ANSWERS_S = 5.0  # /api/status while Validate runs (its checks take tens of seconds)

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")


def _answers() -> dict[str, str]:
    """grade_id -> the answer a student types: the instructors' solution, without its markers."""
    path = course_material() / "grader" / "source" / EXERCISE / f"{EXERCISE}.ipynb"
    answers = {}
    for cell in json.loads(path.read_text())["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and cell["cell_type"] == "code":
            lines = "".join(cell["source"]).splitlines()
            answers[meta["grade_id"]] = "\n".join(line for line in lines if "### " not in line).strip()
    return answers


def _open_in_file_browser(page: Page, name: str) -> None:
    """Double-click ``name`` in the file browser, as a student does."""
    item = page.locator(".jp-DirListing-item", has=page.locator(".jp-DirListing-itemText", has_text=name))
    item.first.dblclick()


def _type_answer(page: Page, cell: Locator, answer: str) -> None:
    """Replace the cell's "raise NotImplementedError()" with ``answer``, through its editor."""
    editor = cell.locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(answer)  # as pasted: no auto-closed quotes doubling up
    sync_api.expect(editor).to_contain_text(answer.splitlines()[0], timeout=STEP_TIMEOUT_MS)


def test_a_student_validates_exercise_01_from_the_course_start_page(lab: Lab, page: Page) -> None:
    """Lesson 00 opens first; exercises/ is one folder up; the answered ex01 passes Validate."""
    printed = re.search(rf"{re.escape(lab.url)}(/lab\S*)\?token=", lab.tail(200))
    assert printed, f"portbinding lab printed no URL to open:\n{lab.tail()}"
    page.goto(f"{lab.url}{printed.group(1)}?reset&token={lab.token}")  # the URL it printed
    lesson = page.locator(".jp-NotebookPanel .jp-Notebook")
    lesson.first.wait_for(timeout=STEP_TIMEOUT_MS)
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel").first
    sync_api.expect(tab).to_have_text("00-start-here.ipynb", timeout=STEP_TIMEOUT_MS)
    shot(page, "validate-01-start-page.png")

    # The file browser shows the workspace's notebooks/ folder: up one, then into exercises/.
    page.locator(".jp-BreadCrumbs-home").first.click()
    _open_in_file_browser(page, "exercises")
    _open_in_file_browser(page, EXERCISE)
    _open_in_file_browser(page, f"{EXERCISE}.ipynb")
    sync_api.expect(tab).to_have_text(f"{EXERCISE}.ipynb", timeout=STEP_TIMEOUT_MS)
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    panel.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for(timeout=STEP_TIMEOUT_MS)
    shot(page, "validate-02-exercise-open.png")
    # A learner gets nbgrader's student side only: no Create Assignment panel, no formgrader.
    for tool in ("Create Assignment", "Formgrader"):
        sync_api.expect(page.get_by_text(tool, exact=True)).to_have_count(0, timeout=STEP_TIMEOUT_MS)

    answers = _answers()
    cells = panel.locator(".jp-Cell")
    sources = [json.dumps(c.get("metadata", {})) for c in _cells(lab)]
    for grade_id, answer in answers.items():
        index = next(i for i, meta in enumerate(sources) if f'"grade_id": "{grade_id}"' in meta)
        _type_answer(page, cells.nth(index), answer)
    page.keyboard.press("Escape")
    page.keyboard.press("Control+s")
    saved = wait_until(lambda: _unanswered(lab) == 0, timeout=STEP_TIMEOUT_MS / 1000)
    assert saved, f"the saved notebook still has {_unanswered(lab)} unanswered cell(s)"

    panel.get_by_role("button", name="Validate").click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=VALIDATE_TIMEOUT_MS)
    # While the checks run, the server still answers (nbgrader validated on its event loop: the
    # whole JupyterLab froze, and showed "Server Connection Error" on a busy machine).
    asked = time.monotonic()
    lab.api("GET", "/api/status")
    waited = time.monotonic() - asked
    assert waited < SERVER_ANSWERS_S, f"the server took {waited:.1f} s to answer while Validate ran"
    sync_api.expect(dialog).not_to_contain_text("Validating", timeout=VALIDATE_TIMEOUT_MS)
    shot(page, "validate-03-result.png", locator=dialog.locator(".jp-Dialog-content"))
    said = dialog.inner_text()
    assert "Success! Your notebook passes all the tests." in said, f"Validate said:\n{said[:3000]}"
    dialog.get_by_role("button").last.click()


def _cells(lab: Lab) -> list[dict[str, object]]:
    path = lab.root / "exercises" / EXERCISE / f"{EXERCISE}.ipynb"
    cells: list[dict[str, object]] = json.loads(path.read_text())["cells"]
    return cells


def _unanswered(lab: Lab) -> int:
    """Answer cells still holding the placeholder, in the notebook as saved on disk (-1 while the
    server is still writing it: read half-written, it is not valid JSON yet)."""
    try:
        cells = _cells(lab)
    except json.JSONDecodeError:
        return -1
    return sum("NotImplementedError" in "".join(str(c["source"])) for c in cells)
