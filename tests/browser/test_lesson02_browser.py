"""Lesson 02 in a real JupyterLab, driven through its widgets in headless Chromium.

A learner's path: run the unreachable notebook from the console, probe it (red, reset), diagnose
it (loopback_only), put the fix into the console, run it, probe again (green). Screenshots of
every step go to test-output/browser/. The test fails on any error output in the notebook and on
any error message in a widget.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import docker
import pytest

from portbinding.builder import build_images, missing_images
from portbinding.engine import COURSE, COURSE_LABEL, SESSION_LABEL, free_port
from portbinding.probe import probe_http, wait_for

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "test-output" / "browser"
LESSON = "02-the-unreachable-notebook.ipynb"
LEARNER_CELL_MARKER = "display(console, light, diagram)"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
STEP_TIMEOUT_MS = 90_000

ERROR_OUTPUTS = (
    '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"], '
    '.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"], .jp-OutputArea-output .ansi-red-fg'
)

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")


@dataclass
class Lab:
    """A running JupyterLab on a temporary copy of the lessons."""

    url: str
    token: str
    root: Path
    process: subprocess.Popen[bytes]
    started: datetime
    sessions: set[str] = field(default_factory=set)

    def api(self, method: str, path: str) -> object:
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None


@pytest.fixture(scope="module")
def images_built(docker_client: docker.DockerClient) -> None:
    """Lesson 02 runs the notebook images; build them if this machine does not have them yet."""
    if missing_images(docker_client):
        build_images(docker_client)


@pytest.fixture
def lab(tmp_path: Path, docker_client: docker.DockerClient, images_built: None) -> Iterator[Lab]:
    """JupyterLab from the venv on a free port, root_dir a temp copy of notebooks/; always stopped."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    root = tmp_path / "notebooks"
    shutil.copytree(REPO / "notebooks", root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    config = tmp_path / "jupyter-config"
    (config / "labconfig").mkdir(parents=True)
    # No "would you like news?" toast over the widgets in the screenshots.
    (config / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    venv_bin = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    token, port = secrets.token_hex(16), free_port()
    command = [
        str(venv_bin / "jupyter"), "lab", "--no-browser", f"--ServerApp.token={token}",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
    ]  # fmt: skip
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = (tmp_path / "jupyter-lab.log").open("wb")
    started = datetime.now(UTC)
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    running = Lab(f"http://127.0.0.1:{port}", token, root, process, started)
    try:
        ready = wait_for(
            lambda: probe_http(f"{running.url}/api", timeout=2),
            timeout=90,
            alive=lambda: process.poll() is None,
        )
        assert ready.ok, f"JupyterLab did not answer on {running.url}: {ready.detail}\n{_tail(tmp_path)}"
        yield running
    finally:
        _stop(running, docker_client)
        log.close()


def _tail(tmp_path: Path) -> str:
    return "\n".join((tmp_path / "jupyter-lab.log").read_text(errors="replace").splitlines()[-30:])


def _stop(lab: Lab, client: docker.DockerClient) -> None:
    """Shut the kernels down (their atexit cleanup runs), stop the server, then sweep what is left."""
    with contextlib.suppress(Exception):
        kernels = lab.api("GET", "/api/kernels")
        for kernel in kernels if isinstance(kernels, list) else []:
            with contextlib.suppress(Exception):
                lab.api("DELETE", f"/api/kernels/{kernel['id']}")
    if lab.process.poll() is None:
        lab.process.send_signal(signal.SIGTERM)
        try:
            lab.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(lab.process.pid, signal.SIGKILL)  # its own session: only what it started
            lab.process.wait(timeout=10)
    # Backstop: the lesson's session label read from the page; without it, course containers
    # created after this test started (their kernel's atexit may not have run if it was killed).
    course = {"label": f"{COURSE_LABEL}={COURSE}"}
    for container in client.containers.list(all=True, filters=course):
        labels = container.labels
        mine = labels.get(SESSION_LABEL) in lab.sessions
        created = datetime.fromisoformat(str(container.attrs["Created"])[:26].rstrip("Z") + "+00:00")
        if mine or (
            not lab.sessions and created >= lab.started and labels.get("portbinding.owner") == "lesson"
        ):
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)


def _learner_cell_index(notebook: Path) -> tuple[int, int]:
    """(index of the learner-path cell, number of cells) in ``notebook``."""
    cells = json.loads(notebook.read_text())["cells"]
    for index, cell in enumerate(cells):
        if cell["cell_type"] == "code" and LEARNER_CELL_MARKER in "".join(cell["source"]):
            return index, len(cells)
    raise AssertionError(f"{notebook.name} has no learner-path cell ({LEARNER_CELL_MARKER!r})")


def _assert_no_errors(page: Page, step: str) -> None:
    errors = page.locator(ERROR_OUTPUTS)
    assert errors.count() == 0, f"{step}: a cell shows an error:\n{errors.first.inner_text()[:2000]}"
    messages = page.locator(".pbl-msg-error")
    assert messages.count() == 0, f"{step}: a widget shows an error: {messages.first.inner_text()}"


def _wait(page: Page, locator: Locator, step: str) -> None:
    """Wait for ``locator``; on a timeout, fail with what the widgets were saying."""
    try:
        locator.wait_for(timeout=STEP_TIMEOUT_MS)
    except sync_api.TimeoutError:
        said = [text.strip() for text in page.locator(".pbl-msg").all_inner_texts()]
        raise AssertionError(f"{step}: timed out waiting for {locator}; the widgets said: {said}") from None


def _shot(page: Page, name: str) -> Path:
    """A screenshot of the learner-path widgets (the viewport is tall enough to hold them all)."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / name
    area = page.locator(".jp-OutputArea:has(.pbl-console)").first
    area.evaluate("element => element.scrollIntoView({block: 'start'})")
    area.screenshot(path=str(path), animations="disabled")
    return path


def test_learner_clicks_from_unreachable_to_reachable(lab: Lab) -> None:
    """Run, Probe (red), Diagnose (loopback_only), fix into the console, Run, Probe (green)."""
    expect = sync_api.expect
    learner_cell, cell_count = _learner_cell_index(lab.root / LESSON)
    for old in OUT.glob("*.png"):
        old.unlink()  # screenshots of an earlier run would pass for this one's
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        # Tall: the notebook scrolls inside its own panel, so a screenshot shows only what fits.
        page = browser.new_page(viewport={"width": 1280, "height": 2400})
        try:
            page.goto(f"{lab.url}/lab/tree/{LESSON}?reset&token={lab.token}")
            cells = page.locator(".jp-NotebookPanel .jp-Cell")
            # Clicking while JupyterLab still renders the cells hits elements it is replacing.
            expect(cells).to_have_count(cell_count, timeout=STEP_TIMEOUT_MS)
            page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for(
                timeout=STEP_TIMEOUT_MS
            )

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
            _assert_no_errors(page, "setup")
            OUT.mkdir(parents=True, exist_ok=True)
            page.screenshot(
                path=str(OUT / "00-lesson-open.png"), clip={"x": 0, "y": 0, "width": 1280, "height": 1000}
            )
            _shot(page, "01-widgets-ready.png")

            # 1. Run the broken container from the console (the scenario is preselected).
            expect(console.locator(".pbl-run-line input")).to_have_value(
                re.compile(r"notebook-loopback:1\.0$")
            )
            console.locator("button.pbl-run").click()
            expect(console.locator("button.pbl-run")).to_be_disabled()  # busy while it starts
            _wait(page, console.locator(".pbl-msg-ok", has_text="127.0.0.1:8888"), "run the broken container")
            session.wait_for(state="attached", timeout=STEP_TIMEOUT_MS)
            lab.sessions.add(str(session.get_attribute("data-session")))
            _wait(
                page,
                page.locator('.pbl-portmap .pbl-hop[data-hop="address"][data-ok="red"]'),
                "port map: red",
            )
            _assert_no_errors(page, "run")
            _shot(page, "02-broken-container-running.png")

            # 2. Probe: unreachable.
            light.locator("button.pbl-probe").click()
            red = light.locator('.pbl-light[data-light="red"]')
            _wait(page, red, "probe: red")
            assert red.get_attribute("data-outcome") in ("reset", "empty_reply", "refused")
            _assert_no_errors(page, "probe")
            _shot(page, "03-probe-unreachable.png")

            # 3. Diagnose: loopback only, with the fix.
            light.locator("button.pbl-diagnose").click()
            _wait(page, light.locator('.pbl-diagnosis-body[data-cause="loopback_only"]'), "diagnose")
            expect(light.locator(".pbl-fix-run")).to_contain_text("--ServerApp.ip=0.0.0.0")
            _assert_no_errors(page, "diagnose")
            _shot(page, "04-diagnosis-loopback-only.png")

            # 4. Put the fix in the console and run it.
            light.locator("button.pbl-apply-fix").click()
            expect(console.locator(".pbl-run-line input")).to_have_value(
                re.compile(r"--ServerApp\.ip=0\.0\.0\.0$"), timeout=STEP_TIMEOUT_MS
            )
            console.locator("button.pbl-run").click()
            _wait(page, console.locator(".pbl-msg-ok", has_text="0.0.0.0:8888"), "run the fix")
            _assert_no_errors(page, "fix")

            # 5. Probe again: reachable.
            expect(light.locator("button.pbl-probe")).to_be_enabled(timeout=STEP_TIMEOUT_MS)
            light.locator("button.pbl-probe").click()
            green = light.locator('.pbl-light[data-light="green"]')
            _wait(page, green, "probe: green")
            assert green.get_attribute("data-outcome") == "ok"
            _wait(
                page,
                page.locator('.pbl-portmap .pbl-hop[data-hop="address"][data-ok="green"]'),
                "port map: green",
            )
            _assert_no_errors(page, "probe after the fix")
            _shot(page, "05-probe-reachable.png")
        except BaseException:
            OUT.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(OUT / "99-failure.png"), full_page=True)  # what the page showed
            raise
        finally:
            browser.close()
