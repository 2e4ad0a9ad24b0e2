"""Lesson 07 in a real JupyterLab, in headless Chromium: the laptop table and the proxy's probe light.

A learner runs the lesson from the top with Shift+Enter up to the probe light on nginx (the API
behind it stopped): the laptop-engines table shows their row in words, Probe says the proxy
answers but not with the app (a 502), and Diagnose names upstream_down with the upstream's own
fix (``docker start ...``). Screenshots go to test-output/browser/. Any error output fails it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.browser.test_lesson02_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    OUT,
    STEP_TIMEOUT_MS,
    Lab,
    _assert_no_errors,
    _wait,
    images_built,
    lab,
    sync_api,
)

__all__ = ["images_built", "lab"]  # the fixtures, shared with lesson 02's browser test

LESSON = "07-beyond-one-container.ipynb"
LIGHT_CELL = "light = ProbeLight(proxy"

pytestmark = pytest.mark.engines("docker", reason="lesson 07 needs networks, nginx and Redis")


def _cell_index(notebook: Path, marker: str) -> tuple[int, int]:
    cells = json.loads(notebook.read_text())["cells"]
    for index, cell in enumerate(cells):
        if cell["cell_type"] == "code" and marker in "".join(cell["source"]):
            return index, len(cells)
    raise AssertionError(f"{notebook.name} has no cell with {marker!r}")


def test_the_proxy_light_turns_a_502_into_the_upstreams_diagnosis(lab: Lab) -> None:
    expect = sync_api.expect
    light_cell, cell_count = _cell_index(lab.root / LESSON, LIGHT_CELL)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 2400})
        try:
            page.goto(f"{lab.url}/lab/tree/{LESSON}?reset&token={lab.token}")
            cells = page.locator(".jp-NotebookPanel .jp-Cell")
            expect(cells).to_have_count(cell_count, timeout=STEP_TIMEOUT_MS)
            page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for(
                timeout=STEP_TIMEOUT_MS
            )
            page.keyboard.press("Control+b")
            cells.first.click()
            page.keyboard.press("Escape")
            for _ in range(light_cell + 1):
                page.keyboard.press("Shift+Enter")
            light = page.locator(".pbl-probe-light")
            _wait(page, light, "the probe light is shown")
            page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for(
                timeout=STEP_TIMEOUT_MS
            )
            _assert_no_errors(page, "lesson 07 up to the light")

            table = page.locator("table:has(caption)", has_text="Where your engine runs")
            expect(table).to_contain_text("▶ your engine")
            expect(page.locator("p[role='status']", has_text="Your engine is the row marked")).to_have_count(
                1
            )
            OUT.mkdir(parents=True, exist_ok=True)
            table.screenshot(path=str(OUT / "07-laptop-table.png"))

            light.locator("button.pbl-probe").click()
            # A 502 is an HTTP answer: the port binding works, the app behind does not.
            _wait(
                page, light.locator('.pbl-light[data-outcome="unexpected_response"]'), "probe the proxy: 502"
            )
            light.locator("button.pbl-diagnose").click()
            _wait(
                page, light.locator('.pbl-diagnosis-body[data-cause="upstream_down"]'), "diagnose the proxy"
            )
            expect(light).to_contain_text("docker start")
            _assert_no_errors(page, "probe and diagnose the proxy")
            light.screenshot(path=str(OUT / "07-proxy-502-diagnosed.png"))
        except BaseException:
            OUT.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(OUT / "07-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
