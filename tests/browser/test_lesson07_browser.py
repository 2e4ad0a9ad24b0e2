"""Lesson 07 in a real JupyterLab, in headless Chromium: the laptop table and the proxy's probe light.

A learner runs the lesson from the top with Shift+Enter up to the probe light on nginx (the API
behind it stopped): the laptop-engines table shows their row in words, Probe says the proxy
answers but not with the app (a 502), and Diagnose names upstream_down with the upstream's own
fix (``docker start ...``). Screenshots go to test-output/browser/. Any error output fails it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.jupyterlab import OUT, Lab, assert_no_errors, open_notebook, shot, wait_shown

if TYPE_CHECKING:
    from playwright.sync_api import Page

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")

LESSON = "notebooks/07-beyond-one-container.ipynb"
LIGHT_CELL = "light = ProbeLight(proxy"

pytestmark = pytest.mark.engines("docker", reason="lesson 07 needs networks, nginx and Redis")


def _cell_index(notebook: Path, marker: str) -> tuple[int, int]:
    cells = json.loads(notebook.read_text())["cells"]
    for index, cell in enumerate(cells):
        if cell["cell_type"] == "code" and marker in "".join(cell["source"]):
            return index, len(cells)
    raise AssertionError(f"{notebook.name} has no cell with {marker!r}")


def test_the_proxy_light_turns_a_502_into_the_upstreams_diagnosis(lab: Lab, page: Page) -> None:
    expect = sync_api.expect
    light_cell, _ = _cell_index(lab.root / LESSON, LIGHT_CELL)
    for old in OUT.glob("07-*.png"):
        old.unlink()  # screenshots of an earlier run would pass for this one's
    cells = open_notebook(page, lab, LESSON)
    page.keyboard.press("Control+b")
    cells.first.click()
    page.keyboard.press("Escape")
    for _ in range(light_cell + 1):
        page.keyboard.press("Shift+Enter")
    light = page.locator(".pbl-probe-light")
    wait_shown(page, light, "the probe light is shown")
    page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for(timeout=180_000)
    assert_no_errors(page, "lesson 07 up to the light")

    table = page.locator("table:has(caption)", has_text="Where your engine runs")
    expect(table).to_contain_text("▶ your engine")
    expect(page.locator("p[role='status']", has_text="Your engine is the row marked")).to_have_count(1)
    shot(page, "07-laptop-table.png", locator=table)

    light.locator("button.pbl-probe").click()
    # A 502 is an HTTP answer: the port binding works, the app behind does not.
    wait_shown(page, light.locator('.pbl-light[data-outcome="unexpected_response"]'), "probe the proxy: 502")
    light.locator("button.pbl-diagnose").click()
    wait_shown(page, light.locator('.pbl-diagnosis-body[data-cause="upstream_down"]'), "diagnose the proxy")
    expect(light).to_contain_text("docker start")
    assert_no_errors(page, "probe and diagnose the proxy")
    shot(page, "07-proxy-502-diagnosed.png", locator=light)
