"""`make lab` -- the README's first command -- serves the learner's own copy of lessons and exercises."""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import docker

from portbinding.engine import free_port
from portbinding.probe import probe_http, wait_for
from tests.support.checkout import REPO

LESSON = "notebooks/00-start-here.ipynb"
EXERCISE = "exercises/ex01-unreachable-notebook/ex01-unreachable-notebook.ipynb"


def _api(base: str, token: str, path: str, *, method: str = "GET", body: object = None) -> object:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{base}/api/contents/{path}", data=data, method=method,
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_make_lab_serves_a_workspace_with_the_lessons_and_the_exercises(
    docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    """Run `make lab`: its URL opens lesson 00, exercises/ is there too, and saving never touches git."""
    port, workspace = free_port(), tmp_path / "my-course"
    tracked = (REPO / LESSON).read_bytes()
    process = subprocess.Popen(
        ["make", "-s", "lab", "HOST=127.0.0.1", f"PORT={port}", f"WORKSPACE={workspace}"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    assert process.stdout is not None
    pattern = re.compile(rf"(http://127\.0\.0\.1:{port}/lab\S*token=\w+)")
    seen: list[str] = []
    url = None
    try:
        reader = selectors.DefaultSelector()
        reader.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + 180
        while url is None and time.monotonic() < deadline and process.poll() is None:
            if not reader.select(timeout=max(0.0, deadline - time.monotonic())):
                break
            line = process.stdout.readline().decode(errors="replace")
            seen.append(line.rstrip())
            match = pattern.search(line)
            url = match.group(1) if match else None
        assert url, "make lab printed no URL:\n" + "\n".join(seen[-30:])
        token = url.rsplit("token=", 1)[1]
        base = f"http://127.0.0.1:{port}"
        # Jupyter logs its URL a moment before the socket listens: wait for readiness, then check.
        page = wait_for(lambda: probe_http(f"{base}/api/contents?token={token}"), timeout=60)
        assert page.ok, f"the printed server does not answer: {page.detail}\n" + "\n".join(seen[-15:])

        for path in (LESSON, EXERCISE):
            probe = probe_http(f"{base}/api/contents/{path}?content=0&token={token}", timeout=10)
            assert probe.ok, f"{path} is not served by make lab: {probe.outcome} {probe.detail}"
        assert any(str(workspace) in line for line in seen), "make lab should say where the workspace is"
        opened = urllib.request.urlopen(f"{base}/?token={token}", timeout=10)
        start = urllib.parse.urlsplit(opened.url).path
        assert start == f"/lab/tree/{LESSON}", f"the start page is {opened.url}, not lesson 00"

        # A learner's autosave: it lands in the workspace, never in the course's tracked file.
        lesson = _api(base, token, LESSON)
        assert isinstance(lesson, dict)
        lesson["content"]["cells"][0]["source"] = "my notes"
        _api(base, token, LESSON, method="PUT", body={"type": "notebook", "content": lesson["content"]})
        assert "my notes" in (workspace / LESSON).read_text(), "the save did not reach the workspace"
        assert (REPO / LESSON).read_bytes() == tracked, "saving a lesson changed the course's tracked file"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
