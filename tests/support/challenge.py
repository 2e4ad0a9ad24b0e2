"""Helpers for the challenge tests: a learner's shell, curl as the oracle, a stopwatch on the URL."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass

from portbinding.challenge.services import Service
from portbinding.probe import probe_http

CURL = shutil.which("curl") or "curl"
# curl exit codes as classes, the same table tests/unit/test_probe_curl_agreement.py uses.
CURL_EXIT_CLASS = {0: "ok", 7: "refused", 28: "timeout", 52: "reset_or_empty", 56: "reset_or_empty"}
# The test's own containers carry the run's labels, so the leftover check sees them if a test breaks.
TEST_LABELS = (
    "--label portbinding.course=port-binding-lab --label portbinding.owner=tests "
    f"--label portbinding.run={os.environ.get('PORTBINDING_RUN_ID', 'none')}"
)


def shell(line: str, *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``line`` the way a learner pastes it into a terminal (bash, the docker CLI)."""
    return subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=timeout, check=False)


@dataclass(frozen=True)
class Curl:
    exit_code: int
    status: int | None
    body: str

    @property
    def outcome_class(self) -> str:
        return CURL_EXIT_CLASS.get(self.exit_code, f"exit {self.exit_code}")


def curl(url: str) -> Curl:
    """curl's verdict on ``url`` (no proxy: the probe never uses one either)."""
    done = subprocess.run(
        [CURL, "-sS", "--noproxy", "*", "--max-time", "3", "-w", "\n%{http_code}", url],
        capture_output=True,
        text=True,
        timeout=15,
        check=False,
    )
    body, _, code = done.stdout.rpartition("\n")
    return Curl(done.returncode, int(code) if code.isdigit() and code != "000" else None, body)


class FirstAnswer:
    """A stopwatch: polls ``url`` every few milliseconds and notes when ``service`` first answers."""

    def __init__(self, url: str, service: Service) -> None:
        self._url = url
        self._service = service
        self._stop = threading.Event()
        self.at: float | None = None
        self._thread = threading.Thread(target=self._loop, daemon=True, name="first-answer")
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            # A short timeout: a probe stuck in docker-proxy's wiring would blur the moment.
            if self._service.answers(probe_http(self._url, timeout=0.2)):
                self.at = time.monotonic()
                return
            self._stop.wait(0.005)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
