"""`make lab` -- the README's first command -- serves JupyterLab at the URL it prints."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import time
from pathlib import Path

import docker

from portbinding.engine import free_port
from portbinding.probe import probe_http, wait_for

REPO = Path(__file__).resolve().parents[2]


def test_make_lab_prints_a_url_that_serves_the_lessons(docker_client: docker.DockerClient) -> None:
    """Run `make lab` on a free port, read the URL from its output, and fetch the lesson tree."""
    port = free_port()
    process = subprocess.Popen(
        ["make", "-s", "lab", "HOST=127.0.0.1", f"PORT={port}"],
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
        # Jupyter logs its URL a moment before the socket listens: wait for readiness, then check.
        page = wait_for(lambda: probe_http(f"http://127.0.0.1:{port}/api/contents?token={token}"), timeout=60)
        assert page.ok, f"the printed server does not answer: {page.detail}\n" + "\n".join(seen[-15:])
        lesson = probe_http(
            f"http://127.0.0.1:{port}/api/contents/00-start-here.ipynb?content=0&token={token}", timeout=10
        )
        assert lesson.ok, f"lesson 00 is not served from the lab root: {lesson.outcome} {lesson.detail}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
