"""The formgrader and the assignment list load in JupyterLab, in headless Chromium.

Uses the graded course of the round trip, so the formgrader shows real submissions and
scores; ex01 is released to a temporary nbgrader exchange so the assignment list has one.
Screenshots go to test-output/browser/.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from portbinding.engine import free_port
from portbinding.grading.course import nbgrader_env, run_nbgrader
from portbinding.probe import probe_http, wait_for

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "test-output" / "browser"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
EX01 = "ex01-unreachable-notebook"


@pytest.fixture(scope="module")
def lab(graded_course: Any) -> Iterator[str]:
    """JupyterLab on the graded course (random token, free port); its base URL with the token."""
    root: Path = graded_course.course.root
    exchange = root / "exchange"
    exchange.mkdir(exist_ok=True)
    os.chmod(exchange, 0o777)  # nbgrader's exchange must be world-writable
    with (root / "nbgrader_config.py").open("a") as config:
        config.write(f"\nc.Exchange.root = {str(exchange)!r}\n")
    run_nbgrader(["release_assignment", EX01, "--force"], cwd=root)
    port, token = free_port(), secrets.token_hex(16)
    command = [
        str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", "--allow-root",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
    ]  # fmt: skip
    log = (root / "lab.log").open("wb")
    server = subprocess.Popen(command, cwd=root, env=nbgrader_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        ready = wait_for(lambda: probe_http(f"http://127.0.0.1:{port}/api", timeout=2.0), timeout=60,
                         alive=lambda: server.poll() is None)  # fmt: skip
        assert ready.ok, f"JupyterLab did not start: {ready.detail}\n{(root / 'lab.log').read_text()[-2000:]}"
        yield f"http://127.0.0.1:{port}/{{}}?token={token}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=15)
        log.close()


@pytest.fixture(scope="module")
def page(lab: str) -> Iterator[Any]:
    """A headless Chromium page (Debian's chromium; Playwright cannot download browsers here)."""
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 900})
        finally:
            browser.close()


def test_formgrader_lists_the_assignments_and_the_graded_submissions(lab: str, page: Any) -> None:
    """The formgrader shows every assignment, and ex01's submissions with their autograded scores."""
    page.goto(lab.format("formgrader"))
    for assignment in (EX01, "ex02-port-mapping", "ex03-twelve-factor-api"):
        page.wait_for_selector(f"text={assignment}", timeout=30_000)
    page.screenshot(path=str(SHOTS / "formgrader-assignments.png"))
    page.goto(lab.format(f"formgrader/manage_submissions/{EX01}"))
    page.wait_for_selector("text=alice", timeout=30_000)
    rows = page.inner_text("table")
    assert "h-docker-sdk" in rows and "5 / 5" in rows, rows[:2000]
    page.screenshot(path=str(SHOTS / "formgrader-submissions.png"), full_page=True)


def test_formgrader_and_assignment_list_open_from_jupyterlabs_nbgrader_menu(lab: str, page: Any) -> None:
    """In JupyterLab, Nbgrader > Formgrader and Nbgrader > Assignment List open and load their content."""
    page.goto(lab.format("lab"))
    page.wait_for_selector("text=Nbgrader", timeout=90_000)
    page.click("#jp-MainMenu >> text=Nbgrader")
    page.get_by_role("menuitem", name="Formgrader").click()
    frame = page.frame_locator("iframe").first
    frame.locator(f"text={EX01}").first.wait_for(timeout=60_000)
    page.screenshot(path=str(SHOTS / "lab-formgrader.png"))

    page.click("#jp-MainMenu >> text=Nbgrader")
    page.get_by_role("menuitem", name="Assignment List").click()
    page.wait_for_selector("text=Released assignments", timeout=60_000)
    released = page.locator("#released_assignments_list")
    released.locator(f"text={EX01}").wait_for(timeout=60_000)
    assert "Fetch" in released.inner_text()
    page.screenshot(path=str(SHOTS / "lab-assignment-list.png"))
