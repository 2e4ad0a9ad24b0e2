"""Lesson 02 in a real JupyterLab, driven through its widgets in headless Chromium.

A learner's path: run the unreachable notebook from the console, probe it (red, reset), diagnose
it (loopback_only), put the fix into the console, run it, probe again (green). Screenshots of
every step go to test-output/browser/. The test fails on any error output in the notebook and on
any error message in a widget.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.jupyterlab import (
    OUT,
    STEP_TIMEOUT_MS,
    Lab,
    assert_no_errors,
    open_notebook,
    shot,
    wait_shown,
)

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

LESSON = "notebooks/02-the-unreachable-notebook.ipynb"
LEARNER_CELL_MARKER = "display(console, light, diagram)"

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")


def _learner_cell_index(notebook: Path) -> int:
    """The index of the learner-path cell in ``notebook``."""
    cells = json.loads(notebook.read_text())["cells"]
    for index, cell in enumerate(cells):
        if cell["cell_type"] == "code" and LEARNER_CELL_MARKER in "".join(cell["source"]):
            return index
    raise AssertionError(f"{notebook.name} has no learner-path cell ({LEARNER_CELL_MARKER!r})")


def _widgets(page: Page) -> Locator:
    """The learner-path cell's output: the console, the light and the port map."""
    return page.locator(".jp-OutputArea:has(.pbl-console)").first


def test_learner_clicks_from_unreachable_to_reachable(lab: Lab, page: Page) -> None:
    """Run, Probe (red), Diagnose (loopback_only), fix into the console, Run, Probe (green)."""
    expect = sync_api.expect
    learner_cell = _learner_cell_index(lab.root / LESSON)
    for old in OUT.glob("lesson02-*.png"):
        old.unlink()  # screenshots of an earlier run would pass for this one's
    cells = open_notebook(page, lab, LESSON)
    page.keyboard.press("Control+b")  # hide the file browser: more room for the widgets
    # Run the setup cell and the learner-path cell, as a learner would: Shift+Enter from the top.
    cells.first.click()
    page.keyboard.press("Escape")  # command mode: Shift+Enter runs a cell and moves on
    for _ in range(learner_cell + 1):
        page.keyboard.press("Shift+Enter")
    console = page.locator(".pbl-console")
    console.wait_for(timeout=STEP_TIMEOUT_MS)
    session = console.locator(".pbl-session-id")
    light = page.locator(".pbl-probe-light")
    assert_no_errors(page, "setup")
    OUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(
        path=str(OUT / "lesson02-00-lesson-open.png"), clip={"x": 0, "y": 0, "width": 1280, "height": 1000}
    )
    shot(page, "lesson02-01-widgets-ready.png", locator=_widgets(page))

    # 1. Run the broken container from the console (the scenario is preselected).
    expect(console.locator(".pbl-run-line input")).to_have_value(re.compile(r"notebook-loopback:1\.0$"))
    console.locator("button.pbl-run").click()
    expect(console.locator("button.pbl-run")).to_be_disabled()  # busy while it starts
    wait_shown(page, console.locator(".pbl-msg-ok", has_text="127.0.0.1:8888"), "run the broken container")
    session.wait_for(state="attached", timeout=STEP_TIMEOUT_MS)
    lab.sessions.add(str(session.get_attribute("data-session")))
    wait_shown(
        page,
        page.locator('.pbl-portmap .pbl-hop[data-hop="address"][data-ok="red"]'),
        "port map: red",
    )
    assert_no_errors(page, "run")
    shot(page, "lesson02-02-broken-container-running.png", locator=_widgets(page))

    # 2. Probe: unreachable.
    light.locator("button.pbl-probe").click()
    red = light.locator('.pbl-light[data-light="red"]')
    wait_shown(page, red, "probe: red")
    assert red.get_attribute("data-outcome") in ("reset", "empty_reply", "refused")
    assert_no_errors(page, "probe")
    shot(page, "lesson02-03-probe-unreachable.png", locator=_widgets(page))

    # 3. Diagnose: loopback only, with the fix.
    light.locator("button.pbl-diagnose").click()
    wait_shown(page, light.locator('.pbl-diagnosis-body[data-cause="loopback_only"]'), "diagnose")
    expect(light.locator(".pbl-fix-run")).to_contain_text("--ServerApp.ip=0.0.0.0")
    assert_no_errors(page, "diagnose")
    shot(page, "lesson02-04-diagnosis-loopback-only.png", locator=_widgets(page))

    # 4. Put the fix in the console and run it.
    light.locator("button.pbl-apply-fix").click()
    expect(console.locator(".pbl-run-line input")).to_have_value(
        re.compile(r"--ServerApp\.ip=0\.0\.0\.0$"), timeout=STEP_TIMEOUT_MS
    )
    console.locator("button.pbl-run").click()
    wait_shown(page, console.locator(".pbl-msg-ok", has_text="0.0.0.0:8888"), "run the fix")
    assert_no_errors(page, "fix")

    # 5. Probe again: reachable.
    expect(light.locator("button.pbl-probe")).to_be_enabled(timeout=STEP_TIMEOUT_MS)
    light.locator("button.pbl-probe").click()
    green = light.locator('.pbl-light[data-light="green"]')
    wait_shown(page, green, "probe: green")
    assert green.get_attribute("data-outcome") == "ok"
    wait_shown(
        page,
        page.locator('.pbl-portmap .pbl-hop[data-hop="address"][data-ok="green"]'),
        "port map: green",
    )
    assert_no_errors(page, "probe after the fix")
    shot(page, "lesson02-05-probe-reachable.png", locator=_widgets(page))
