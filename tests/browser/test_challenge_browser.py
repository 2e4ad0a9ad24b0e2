"""A challenge in JupyterLab: solved by typing docker commands into its terminal, and by keyboard alone.

The first test is a learner with a mouse and a terminal: Start, then in JupyterLab's terminal
look (``docker ps``, ``docker port``, ``docker logs``), read what they show, and type a fix;
the challenge widget in the notebook turns green by itself. The second is a learner who uses
no mouse at all: lesson 02's own closing challenge, every step by Tab, Enter, Space and arrow
keys, in the order the widget reads (the committed call may be right or wrong: the challenge is
drawn at random; hint 3's line fixes either). Screenshots go to test-output/browser/challenge-*.png.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import TYPE_CHECKING

import docker
import pytest

from portbinding.probe import wait_until
from tests.support.jupyterlab import (
    STEP_TIMEOUT_MS,
    Lab,
    assert_no_errors,
    focused,
    open_notebook,
    run_cell,
    shot,
    wait_shown,
)

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

TERMINAL_NOTEBOOK = "tests/challenge-terminal.ipynb"
# Lesson 02's own closing challenge (a loopback-only or an unpublished Jupyter, drawn at random),
# after its set-up cell: the cells a learner runs to get there.
LESSON_02 = "notebooks/02-the-unreachable-notebook.ipynb"
LESSON_02_CELLS = ("engine = lesson_engine()", "ChallengeWidget(")
SOLVED_TIMEOUT_MS = 60_000

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")


def _start_in_notebook(
    page: Page, lab: Lab, path: str, needles: tuple[str, ...] = ("ChallengeWidget(",)
) -> Locator:
    """Open ``path``, run the code cells holding ``needles`` (in order) with Shift+Enter; returns
    the challenge widget."""
    cells = open_notebook(page, lab, path)
    page.keyboard.press("Control+b")  # hide the file browser: more room
    sources = ["".join(cell["source"]) for cell in json.loads((lab.root / path).read_text())["cells"]]
    for needle in needles:
        run_cell(page, cells, next(i for i, source in enumerate(sources) if needle in source))
    widget = page.locator(".pbl-challenge").first
    wait_shown(page, widget, "the challenge widget")
    return widget


def _told(widget: Locator) -> tuple[str, str, int]:
    """(container, URL, host port) from the task the widget shows."""
    task = widget.locator(".pbl-challenge-task").inner_text()
    container = re.search(r"serve it: (\S+?)\.", task)
    url = re.search(r"(http://127\.0\.0\.1:(\d+)/\S*)", task)
    assert container and url, f"the task does not name the container and the URL: {task}"
    return container.group(1), url.group(1), int(url.group(2))


def _remove_fix(client: docker.DockerClient, name: str) -> None:
    """The learner's own container (no course label: they typed it) goes with the test."""
    with contextlib.suppress(docker.errors.NotFound):
        client.containers.get(name).remove(force=True)


# ------------------------------------------------------------------------------ terminal


class Terminal:
    """JupyterLab's terminal, typed into like a keyboard; its screen read as text."""

    def __init__(self, page: Page) -> None:
        self.page = page
        page.get_by_role("menuitem", name="File").click()
        page.locator(".lm-Menu-itemLabel", has_text="New").first.click()
        page.get_by_role("menuitem", name="Terminal").click()
        self.panel = page.locator(".jp-Terminal").first
        self.panel.wait_for(timeout=STEP_TIMEOUT_MS)
        # The screen-reader mode (set for the test server) keeps the screen as text in the page.
        self.screen = self.panel.locator(".xterm-accessibility-tree")
        self.screen.wait_for(state="attached", timeout=STEP_TIMEOUT_MS)
        self.count = 0
        assert wait_until(lambda: "#" in self.text() or "$" in self.text(), timeout=30), "no shell prompt"

    def text(self) -> str:
        return self.screen.inner_text().replace("\xa0", " ")

    def type(self, line: str, *, timeout: float = 60) -> str:
        """Type ``line`` and Enter, wait for it to finish; returns what it printed.

        The line ends with ``; echo done-$((N+1))``: the screen shows ``done-N+1`` only once the
        shell has run it (the typed line itself shows ``$((N+1))``).
        """
        self.count += 1
        marker = f"done-{self.count + 1}"
        self.panel.click()
        before = len(self.text().rstrip())
        self.page.keyboard.type(f"{line}; echo done-$(({self.count}+1))")
        self.page.keyboard.press("Enter")
        finished = wait_until(lambda: marker in self.text()[before:], timeout=timeout)
        after = self.text()[before:]
        assert finished, f"`{line}` did not finish in {timeout} s; the terminal shows:\n{after[-1500:]}"
        printed = after.split("\n", 1)[1] if "\n" in after else ""
        return printed.split(marker, 1)[0]


def test_a_challenge_is_solved_from_jupyterlabs_terminal(
    lab: Lab, page: Page, docker_client: docker.DockerClient
) -> None:
    """Look with docker ps/port/logs in the terminal, type a fix there: the widget turns green."""
    widget = _start_in_notebook(page, lab, TERMINAL_NOTEBOOK)
    widget.locator("button.pbl-challenge-start").click()
    wait_shown(page, widget.locator(".pbl-verdict-open"), "the challenge starts")
    assert_no_errors(page, "start")
    container, url, host_port = _told(widget)
    fixed = f"{container}-fixed"
    shot(page, "challenge-terminal-01-started.png", locator=widget)
    try:
        terminal = Terminal(page)
        # Look: the container runs, nothing of it is published, and its log says where it listens.
        ps = terminal.type(f"docker ps -a --filter name={container}")
        row = next((line for line in ps.splitlines() if line.rstrip().endswith(container)), "")
        assert "Up" in row and "->" not in row, f"docker ps should show it running, unpublished:\n{ps}"
        image = row.split()[1]
        port = terminal.type(f"docker port {container}")
        assert "->" not in port, f"docker port should print nothing: {port}"
        logs = terminal.type(f"docker logs {container} 2>&1 | tail -3")
        listens = re.search(r"listening on http://0\.0\.0\.0:(\d+)", logs)
        assert listens, f"the log should say where it listens: {logs}"
        shot(page, "challenge-terminal-02-looked.png", locator=terminal.panel)

        # Fix: the same image, its port published on the challenge's host port.
        line = (
            f"docker rm -f {container} && docker run -d --name {fixed} "
            f"-p 127.0.0.1:{host_port}:{listens.group(1)} {image}"
        )
        terminal.type(line)
        shot(page, "challenge-terminal-03-fixed.png", locator=terminal.panel)

        page.get_by_role("tab", name=re.compile("challenge-terminal")).click()
        solved = widget.locator(".pbl-verdict-solved")
        wait_shown(page, solved, "the widget turns green", timeout_ms=SOLVED_TIMEOUT_MS)
        assert "Solved" in solved.inner_text() and url.split("/")[2] in widget.inner_text(), (
            solved.inner_text()
        )
        assert_no_errors(page, "solved")
        shot(page, "challenge-terminal-04-solved.png", locator=widget)
        widget.locator("button.pbl-challenge-end").click()
        wait_shown(page, widget.locator(".pbl-msg-ok", has_text="Ended (solved)"), "End")
    finally:
        _remove_fix(docker_client, fixed)


# ------------------------------------------------------------------------------ keyboard


def _tab_to(page: Page, css_class: str, *, limit: int = 40) -> list[str]:
    """Press Tab until the focus is on ``css_class``'s control; returns every stop on the way."""
    stops = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        stops.append(focused(page))
        if css_class in stops[-1]:
            return stops
    raise AssertionError(f"Tab never reached {css_class} in {limit} presses; it went: {stops}")


def test_a_challenge_can_be_done_by_keyboard_alone(lab: Lab, page: Page) -> None:
    """Start, look, commit, hints 1-3 and Run by keyboard, in the widget's reading order: solved.

    What the box starts is the challenge's own (labelled): End removes it, and the kernel's exit does if
    the test stops before End."""
    widget = _start_in_notebook(page, lab, LESSON_02, LESSON_02_CELLS)
    # From the cell just run, Tab leads into its output: the first stop is Start.
    stops = _tab_to(page, "pbl-challenge-start")
    page.keyboard.press("Enter")
    wait_shown(page, widget.locator(".pbl-verdict-open"), "Start by Enter")
    container, _, host_port = _told(widget)
    # Start is disabled now (a second press would draw a second challenge), so the focus moved on;
    # go on from the widget's first rung.
    start = widget.locator("button.pbl-challenge-start")
    assert start.is_disabled(), "Start the challenge can still be pressed while the challenge runs"
    widget.locator("button.pbl-rung-state").focus()
    order = [focused(page)]
    for _ in range(4):
        page.keyboard.press("Tab")
        order.append(focused(page))
    rungs = [stop.split("|")[2] for stop in order]
    assert [r.split(" ", 1)[0] for r in rungs] == ["1", "2", "3", "4", "5"], f"rungs out of order: {order}"
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")  # back on rung 2, published ports
    assert "pbl-rung-published" in focused(page), focused(page)
    page.keyboard.press("Space")
    wait_shown(page, widget.locator(".pbl-rung-view", has_text="Rung 2"), "rung 2 by Space")

    # The commit form: both lists by arrow keys, then Commit.
    stops += _tab_to(page, "select|pbl-challenge")
    cells = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell")
    before = cells.count()
    page.keyboard.press("d")
    page.keyboard.press("d")  # type-ahead in the list; in command mode "d d" deletes a cell
    assert cells.count() == before, "typing in a widget's list deleted a notebook cell"
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")  # 2 Published ports
    chosen = widget.locator("select").first.evaluate("select => select.selectedOptions[0].text")
    assert chosen.replace("\xa0", " ") == "2 Published ports", (
        f"ArrowDown on the list chose {chosen!r}: JupyterLab's notebook took the key ({focused(page)})"
    )
    page.keyboard.press("Tab")
    for _ in range(3):
        page.keyboard.press("ArrowDown")  # 3: no host port is published for the app
    cause = widget.locator("select").nth(1).evaluate("select => select.selectedOptions[0].text")
    assert "no host port" in cause.replace("\xa0", " "), f"the cause list shows {cause!r} ({focused(page)})"
    # The widget repeats the choice in words once the kernel has it: then Commit commits it.
    call = widget.locator(".pbl-challenge-call", has_text="2 Published ports — no host port is published")
    wait_shown(page, call, "the choice, in words")
    stops += _tab_to(page, "pbl-challenge-commit")
    page.keyboard.press("Enter")
    wait_shown(page, widget.locator(".pbl-msg-ok", has_text="Committed"), "Commit by Enter")

    stops += _tab_to(page, "pbl-challenge-hint")
    hint = widget.locator("button.pbl-challenge-hint")
    # Everything the polite region is given from now on (a later message -- the verdict changing
    # while the container starts -- may replace a hint before the test reads the region).
    widget.locator(".pbl-live-status").evaluate(
        """region => { window.pblHeard = [];
          new MutationObserver(() => window.pblHeard.push(region.textContent))
            .observe(region, {childList: true, characterData: true, subtree: true}); }"""
    )
    for number in (1, 2, 3):
        # As a person would: press again once the button is back (it is disabled while it works),
        # and it must still have the focus then -- nobody should have to Tab back to it.
        sync_api.expect(hint).to_be_enabled(timeout=STEP_TIMEOUT_MS)
        sync_api.expect(hint).to_be_focused()
        page.keyboard.press("Enter")
        wait_shown(
            page, widget.locator(".pbl-challenge-hints", has_text=f"Hint {number} of 3"), f"hint {number}"
        )
    regions = widget.locator("[role=status][aria-live=polite]")
    assert regions.count() >= 1, "the widget has no polite live region"
    heard = "() => window.pblHeard.some(text => text.startsWith('Hint 3 of 3'))"
    said = wait_until(lambda: bool(page.evaluate(heard)), timeout=5)
    assert said, (
        f"hint 3 was not given to screen readers: {page.evaluate('() => window.pblHeard')!r} "
        f"(assertive: {widget.locator('.pbl-live-alert').inner_text()!r}; "
        f"the widget says: {widget.locator('.pbl-msg').all_inner_texts()})"
    )
    shot(page, "challenge-keyboard-01-hints.png", locator=widget)

    line = widget.locator(".pbl-challenge-line input").input_value()
    assert str(host_port) in line and container in line, f"hint 3's line is not in the Command box: {line}"
    stops += _tab_to(page, "pbl-challenge-run")
    page.keyboard.press("Enter")
    solved = widget.locator(".pbl-verdict-solved")
    wait_shown(page, solved, "solved by keyboard", timeout_ms=SOLVED_TIMEOUT_MS)
    urgent = widget.locator(".pbl-live-alert")
    assert wait_until(lambda: "Solved" in urgent.inner_text(), timeout=5), (
        f"solving was not announced assertively: {urgent.inner_text()!r}"
    )
    assert_no_errors(page, "keyboard run")
    shot(page, "challenge-keyboard-02-solved.png", locator=widget)

    stops += _tab_to(page, "pbl-challenge-end")
    page.keyboard.press("Enter")
    wait_shown(page, widget.locator(".pbl-msg-ok", has_text="Ended (solved)"), "End by Enter")
    reading = [stop.split("|")[1] for stop in stops if "pbl-" in stop]
    assert reading, f"Tab never reached the widget: {stops}"
