"""One JupyterLab for the browser tests, started the way a learner starts it, and page helpers.

The server is the course's own start command (``portbinding lab``, what ``make lab`` runs) on a
fresh workspace in a temporary folder, so the tests see exactly what a learner sees: lesson 00
first, notebooks/ and exercises/ side by side. The browser is Debian's Chromium driven by
Playwright. Everything is stopped and swept afterwards: kernels first (their exit removes their
lesson's containers), then the server, then anything a kernel of this lab left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
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

from portbinding.engine import COURSE, COURSE_LABEL, OWNER_LABEL, RUN_LABEL, SESSION_LABEL, free_port
from portbinding.probe import probe_http, wait_for, wait_until
from tests.support.checkout import REPO

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

OUT = REPO / "test-output" / "browser"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
STEP_TIMEOUT_MS = 90_000
# The tests' own notebooks (a challenge widget alone, ...), copied into the workspace's tests/.
TEST_NOTEBOOKS = REPO / "tests" / "browser" / "notebooks"

ERROR_OUTPUTS = (
    '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"], '
    '.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"], .jp-OutputArea-output .ansi-red-fg'
)


@dataclass
class Lab:
    """A running JupyterLab on a learner's workspace."""

    url: str
    token: str
    root: Path  # the workspace
    process: subprocess.Popen[bytes]
    started: datetime
    log: Path
    sessions: set[str] = field(default_factory=set)  # lesson sessions read from the pages

    def api(self, method: str, path: str, body: object = None) -> object:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}{path}", data=data, method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:
            reply = response.read()
        return json.loads(reply) if reply else None

    def page_url(self, path: str) -> str:
        """The URL that opens ``path`` (relative to the workspace) in a fresh layout."""
        return f"{self.url}/lab/tree/{path}?reset&token={self.token}"

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def running_lab(folder: Path, client: docker.DockerClient) -> Iterator[Lab]:
    """``portbinding lab`` on a new workspace in ``folder`` on a free port; always stopped and swept."""
    workspace = folder / "workspace"
    config = folder / "jupyter-config"
    (config / "labconfig").mkdir(parents=True)
    # No "would you like news?" toast over the widgets in the screenshots.
    (config / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    # The terminal's screen-reader mode keeps what it shows as text in the page (xterm draws on a
    # canvas otherwise): screen readers -- and the tests -- can read the output of a command.
    settings = folder / "lab-settings" / "@jupyterlab"
    (settings / "terminal-extension").mkdir(parents=True)
    (settings / "terminal-extension" / "plugin.jupyterlab-settings").write_text(
        json.dumps({"screenReaderMode": True})
    )
    # Every cell in the page, not only those in view (JupyterLab skips rendering the others): a
    # Run All can be followed cell by cell, and the accessibility audit sees every output.
    (settings / "notebook-extension").mkdir(parents=True)
    (settings / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none"})
    )
    venv_bin = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_RUNTIME_DIR": str(folder / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(folder / "lab-settings"),
        "SHELL": "/bin/bash",  # the terminal a learner gets
    }
    token, port = secrets.token_hex(16), free_port()
    extra = [f"--ServerApp.token={token}"] + (["--allow-root"] if os.geteuid() == 0 else [])
    command = [
        str(venv_bin / "portbinding"), "lab", "--workspace", str(workspace), "--host", "127.0.0.1",
        "--port", str(port), "--", *extra,
    ]  # fmt: skip
    log_path = folder / "jupyter-lab.log"
    started = datetime.now(UTC)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    lab = Lab(f"http://127.0.0.1:{port}", token, workspace, process, started, log_path)
    try:
        ready = wait_for(
            lambda: probe_http(f"{lab.url}/api?token={token}", timeout=2),
            timeout=90,
            alive=lambda: process.poll() is None,
        )
        assert ready.ok, f"portbinding lab did not answer on {lab.url}: {ready.detail}\n{lab.tail()}"
        if TEST_NOTEBOOKS.is_dir():
            shutil.copytree(TEST_NOTEBOOKS, workspace / "tests", dirs_exist_ok=True)
        yield lab
    finally:
        _stop(lab, client)


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
    # Backstop: the lesson sessions read from the pages; without them, lesson containers of this
    # run created after the lab started (a kernel's atexit may not have run if it was killed).
    run = os.environ.get("PORTBINDING_RUN_ID", "")
    course = {"label": [f"{COURSE_LABEL}={COURSE}", f"{RUN_LABEL}={run}"]}
    for container in client.containers.list(all=True, filters=course):
        labels = container.labels
        created = datetime.fromisoformat(str(container.attrs["Created"])[:26].rstrip("Z") + "+00:00")
        mine = labels.get(SESSION_LABEL) in lab.sessions
        if mine or (created >= lab.started and labels.get(OWNER_LABEL) == "lesson"):
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
    # Lesson 07's networks, once their containers are gone (a network in use cannot be removed).
    for network in client.networks.list(filters=course):
        if (network.attrs.get("Labels") or {}).get(SESSION_LABEL) in lab.sessions:
            with contextlib.suppress(docker.errors.APIError):
                network.remove()


# ------------------------------------------------------------------------------ pages


def open_notebook(page: Page, lab: Lab, path: str) -> Locator:
    """Open ``path`` with a fresh layout; wait until every cell is there and the kernel is idle."""
    from playwright.sync_api import expect

    cells = json.loads((lab.root / path).read_text())["cells"]
    page.goto(lab.page_url(path))
    located = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell")
    # Clicking while JupyterLab still renders the cells hits elements it is replacing.
    expect(located).to_have_count(len(cells), timeout=STEP_TIMEOUT_MS)
    page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for(timeout=STEP_TIMEOUT_MS)
    # The indicator says idle before the page's kernel connection is open, and a cell run before
    # that is dropped: wait until the server counts the page's connection to an idle kernel.
    ready = wait_until(lambda: _kernel_connected(lab, path), timeout=STEP_TIMEOUT_MS / 1000)
    assert ready, f"the kernel of {path} never got a connection from the page:\n{lab.tail()}"
    return located


def _kernel_connected(lab: Lab, path: str) -> bool:
    sessions = lab.api("GET", "/api/sessions")
    for session in sessions if isinstance(sessions, list) else []:
        kernel = session.get("kernel") or {}
        if session.get("path") == path and kernel.get("execution_state") == "idle":
            return int(kernel.get("connections") or 0) > 0
    return False


def run_cell(page: Page, cells: Locator, index: int) -> None:
    """Select cell ``index`` and run it with Shift+Enter, as a learner would; wait until it ran."""
    cells.nth(index).click()
    page.keyboard.press("Escape")
    # JupyterLab leaves edit mode a moment later: a Shift+Enter before that is typed into the cell.
    page.locator(".jp-Notebook.jp-mod-commandMode").first.wait_for(timeout=STEP_TIMEOUT_MS)
    page.keyboard.press("Shift+Enter")
    prompt = cells.nth(index).locator(".jp-InputPrompt")
    ran = page.wait_for_function(
        "prompt => /\\[(\\*|\\d+)\\]/.test(prompt.innerText)",
        arg=prompt.element_handle(),
        timeout=STEP_TIMEOUT_MS,
    )
    assert ran, f"cell {index} did not run"


def assert_no_errors(page: Page, step: str) -> None:
    errors = page.locator(ERROR_OUTPUTS)
    assert errors.count() == 0, f"{step}: a cell shows an error:\n{errors.first.inner_text()[:2000]}"
    messages = page.locator(".pbl-msg-error")
    assert messages.count() == 0, f"{step}: a widget shows an error: {messages.first.inner_text()}"


def wait_shown(page: Page, locator: Locator, step: str, *, timeout_ms: int = STEP_TIMEOUT_MS) -> None:
    """Wait for ``locator``; on a timeout, fail with what the widgets were saying."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        locator.wait_for(timeout=timeout_ms)
    except PlaywrightTimeout:
        said = [text.strip() for text in page.locator(".pbl-msg").all_inner_texts()]
        raise AssertionError(f"{step}: timed out waiting for {locator}; the widgets said: {said}") from None


def shot(page: Page, name: str, *, locator: Locator | None = None) -> Path:
    """A screenshot into test-output/browser/ (of ``locator`` only, when given)."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / name
    if locator is None:
        page.screenshot(path=str(path), animations="disabled")
    else:
        locator.evaluate("element => element.scrollIntoView({block: 'start'})")
        locator.screenshot(path=str(path), animations="disabled")
    return path


def focused(page: Page) -> str:
    """What has the keyboard focus: tag, its label or text, and its pbl-* classes."""
    return str(
        page.evaluate(
            """() => {
              const e = document.activeElement;
              if (!e) return "(nothing)";
              const box = e.closest('[class*="pbl-"]');
              const own = [...(box ? box.classList : [])].filter(c => c.startsWith('pbl-')).join('.');
              const label = e.getAttribute('aria-label') || e.innerText || e.value || '';
              return `${e.tagName.toLowerCase()}|${own}|${label.trim().slice(0, 60)}`;
            }"""
        )
    )
