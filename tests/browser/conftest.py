"""The browser tests share one JupyterLab (the course's own ``portbinding lab``) and one Chromium.

Each test gets a fresh page (its own browser context); a failing test leaves a full-page
screenshot, ``99-failure-<test>.png``, beside the others in test-output/browser/.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import docker
import pytest

from portbinding.builder import build_images, missing_images
from tests.support.jupyterlab import CHROMIUM, CHROMIUM_ARGS, OUT, Lab, running_lab

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory, docker_client: docker.DockerClient) -> Iterator[Lab]:
    """JupyterLab as a learner starts it, on a fresh workspace; the lessons' images built first."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (make browser)")
    if missing_images(docker_client):
        build_images(docker_client)
    with running_lab(tmp_path_factory.mktemp("lab"), docker_client) as running:
        yield running


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    # Package scope, not session: a running sync Playwright holds an asyncio loop in this thread,
    # and later tests (asyncio.run, the formgrader's and the hub's own Chromium) must not meet it.
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh page, tall enough that a lesson's widgets fit; a screenshot when the test fails."""
    context = browser.new_context(viewport={"width": 1280, "height": 2000})
    opened = context.new_page()
    yield opened
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        OUT.mkdir(parents=True, exist_ok=True)
        opened.screenshot(path=str(OUT / f"99-failure-{request.node.name}.png"), full_page=True)
    context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test item, so the page fixture knows the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
