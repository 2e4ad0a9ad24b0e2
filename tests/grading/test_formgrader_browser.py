"""The formgrader, as the instructor runs it (not root), in headless Chromium -- and hostile pages in it.

The course graded by the round trip (root grades, in the sandbox) is handed to the instructor
as grader/README.md says: a copy of it whose folder belongs to an unprivileged account
(``nobody`` here), after ``portbinding course hand-over``, so every file grading wrote is that
account's. JupyterLab then runs as that account, from a world-readable staged venv. The
formgrader shows real submissions and scores; ex01 is released to an nbgrader exchange so the
assignment list has one. Opened on the submission whose outputs carry script (see
submissions/h-formgrader-script.toml), the page must run none of it: no marker set, no request
to the formgrader's API, the gradebook unchanged. Screenshots go to test-output/browser/.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from nbgrader.api import Gradebook

from portbinding.engine import free_port
from portbinding.grading.course import run_nbgrader
from portbinding.probe import probe_http, wait_for
from tests.support.checkout import REPO
from tests.support.staging import stage

SHOTS = REPO / "test-output" / "browser"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
EX01 = "ex01-unreachable-notebook"
HOSTILE = "h-formgrader-script"
INSTRUCTOR = "nobody"  # any unprivileged account; on a grading server, the instructor's own
MARK = "PBL_XSS"


@dataclass(frozen=True)
class Lab:
    """JupyterLab on the instructor's course: its URL pattern, the course folder, the server's pid."""

    url: str
    root: Path
    pid: int

    def at(self, path: str) -> str:
        return self.url.format(path)


@pytest.fixture(scope="module")
def instructor_course(graded_course: Any, srv_base: Path) -> Path:
    """The graded course in the instructor's hands: a copy owned by INSTRUCTOR after `course hand-over`."""
    account = pwd.getpwnam(INSTRUCTOR)
    place = srv_base / "instructor"
    root = place / "course"
    shutil.copytree(graded_course.course.root, root, symlinks=True)
    exchange = place / "exchange"
    exchange.mkdir()
    os.chmod(exchange, 0o777)  # nbgrader's exchange must be world-writable
    with (root / "nbgrader_config.py").open("a") as config:
        config.write(f"\nc.Exchange.root = {str(exchange)!r}\n")
    run_nbgrader(["release_assignment", EX01, "--force"], cwd=root)
    os.chown(root, account.pw_uid, account.pw_gid)
    handed = subprocess.run(
        [sys.executable, "-m", "portbinding", "course", "hand-over", str(root)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert handed.returncode == 0, handed.stderr
    return root


@pytest.fixture(scope="module")
def lab(instructor_course: Path, srv_base: Path) -> Iterator[Lab]:
    """JupyterLab as INSTRUCTOR (random token, free port), from the staged world-readable venv."""
    account = pwd.getpwnam(INSTRUCTOR)
    home = srv_base / "instructor" / "home"
    home.mkdir(mode=0o700)
    os.chown(home, account.pw_uid, account.pw_gid)
    venv = stage().venv
    port, token = free_port(), secrets.token_hex(16)
    command = [
        "setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--clear-groups",
        str(venv / "bin" / "jupyter"), "lab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={instructor_course}",
    ]  # fmt: skip
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
           "JUPYTER_RUNTIME_DIR": str(home / "runtime")}  # fmt: skip
    log_path = srv_base / "instructor" / "lab.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command, cwd=instructor_course, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        ready = wait_for(lambda: probe_http(f"http://127.0.0.1:{port}/api", timeout=2.0), timeout=90,
                         alive=lambda: server.poll() is None)  # fmt: skip
        assert ready.ok, f"JupyterLab did not start: {ready.detail}\n{log_path.read_text()[-3000:]}"
        yield Lab(f"http://127.0.0.1:{port}/{{}}?token={token}", instructor_course, server.pid)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=15)


@pytest.fixture(scope="module")
def page(lab: Lab) -> Iterator[Any]:
    """A headless Chromium page (Debian's chromium; Playwright cannot download browsers here)."""
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 900})
        finally:
            browser.close()


def test_the_formgrader_runs_as_the_instructor_on_files_it_owns(lab: Lab) -> None:
    """Not root: the server's uid is the instructor's, and grading left every course file to that account."""
    status = Path(f"/proc/{lab.pid}/status").read_text()
    uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
    account = pwd.getpwnam(INSTRUCTOR)
    assert int(uid) == account.pw_uid != 0, status
    foreign = [
        str(path) for path in [lab.root, *lab.root.rglob("*")] if path.lstat().st_uid != account.pw_uid
    ]
    assert not foreign, f"not the instructor's after hand-over: {foreign[:10]}"


def test_formgrader_lists_the_assignments_and_the_graded_submissions(lab: Lab, page: Any) -> None:
    """The formgrader shows every assignment, and ex01's submissions with their autograded scores."""
    page.goto(lab.at("formgrader"))
    for assignment in (EX01, "ex02-port-mapping", "ex03-twelve-factor-api"):
        page.wait_for_selector(f"text={assignment}", timeout=30_000)
    page.screenshot(path=str(SHOTS / "formgrader-assignments.png"))
    page.goto(lab.at(f"formgrader/manage_submissions/{EX01}"))
    page.wait_for_selector("text=alice", timeout=30_000)
    rows = page.inner_text("table")
    assert "h-docker-sdk" in rows and "5 / 5" in rows, rows[:2000]
    page.screenshot(path=str(SHOTS / "formgrader-submissions.png"), full_page=True)


def test_a_hostile_submission_runs_no_script_in_the_formgrader(lab: Lab, page: Any) -> None:
    """Its script would mark the page and flag every submission through the API: nothing of it happens."""
    before = _gradebook_state(lab.root)
    with Gradebook(f"sqlite:///{lab.root / 'gradebook.db'}") as gradebook:
        submitted = gradebook.find_submission_notebook(EX01, EX01, HOSTILE).id
    requests: list[str] = []
    page.on("request", lambda request: requests.append(f"{request.method} {request.url}"))
    page.goto(lab.at(f"formgrader/submissions/{submitted}"))
    page.wait_for_selector("text=Question 1", timeout=30_000)
    page.wait_for_load_state("networkidle")  # anything the page's scripts fetch has been asked for
    page.screenshot(path=str(SHOTS / "formgrader-hostile-submission.png"), full_page=True)
    shown = page.inner_text("body")
    assert "removed output of type text/html" in shown, (
        f"the sanitized outputs are not shown:\n{shown[:3000]}"
    )
    for frame in page.frames:
        marked = frame.evaluate(
            f"() => [window.{MARK} ?? null, document.title, localStorage.getItem('{MARK}')]"
        )
        assert marked[0] is None and MARK not in marked[1] and marked[2] is None, f"{frame.url}: {marked}"
    # The formgrader's own page reads the grades and comments of this submission; the script
    # would have listed every submission and flagged each one.
    api = [r for r in requests if "/formgrader/api/" in r]
    own = [r for r in api if r.startswith("GET ") and ("/api/grades?" in r or "/api/comments?" in r)]
    assert api and len(own) == len(api), (
        f"the page called the formgrader's API: {sorted(set(api) - set(own))}"
    )
    assert _gradebook_state(lab.root) == before, "the gradebook changed while the page was open"


def test_formgrader_and_assignment_list_open_from_jupyterlabs_nbgrader_menu(lab: Lab, page: Any) -> None:
    """In JupyterLab, Nbgrader > Formgrader and Nbgrader > Assignment List open and load their content."""
    _open_lab(page, lab.at("lab"))
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


def _open_lab(page: Any, url: str) -> None:
    """JupyterLab, loaded with no error dialog in the way.

    On a busy machine Lab has (rarely) shown "Error Loading Theme" when a stylesheet request
    failed in the browser, with nothing in the server's log; one reload is allowed for that,
    and the failed requests are reported if it happens again.
    """
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(f"{request.url}: {request.failure}"))
    for _ in range(2):
        page.goto(url)
        page.wait_for_selector("text=Nbgrader", timeout=90_000)
        page.wait_for_load_state("networkidle")
        dialogs = page.locator(".jp-Dialog")
        if dialogs.count() == 0:
            return
    raise AssertionError(f"JupyterLab shows {dialogs.first.inner_text()!r}; failed requests: {failed}")


class _Page(HTMLParser):
    """What a browser would act on: event-handler attributes and script bodies."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.handlers: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handlers += [f"<{tag} {name}>" for name, _ in attrs if name.startswith("on")]
        self._in_script = tag == "script"

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False


def test_the_feedback_runs_none_of_the_students_script(graded_course: Any) -> None:
    """The hostile submission's feedback HTML: no event handler, and only the template's own scripts."""
    folder = graded_course.course.root / "feedback"
    hostile = _Page((folder / HOSTILE / EX01 / f"{EX01}.html").read_text())
    honest = _Page((folder / "alice" / EX01 / f"{EX01}.html").read_text())
    assert not hostile.handlers, hostile.handlers
    assert not [s for s in hostile.scripts if MARK in s], "a script of the student's is in the feedback"
    assert len(hostile.scripts) == len(honest.scripts), (len(hostile.scripts), len(honest.scripts))


def _gradebook_state(root: Path) -> list[tuple[Any, ...]]:
    """Every grade, comment and flag of ex01, as plain values."""
    state: list[tuple[Any, ...]] = []
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        for submission in gradebook.find_assignment(EX01).submissions:
            for notebook in submission.notebooks:
                state.append((submission.student_id, notebook.flagged))
                state += [(g.name, g.auto_score, g.manual_score, g.extra_credit) for g in notebook.grades]
                state += [(c.name, c.auto_comment, c.manual_comment) for c in notebook.comments]
    return sorted(state, key=repr)
