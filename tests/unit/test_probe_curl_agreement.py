"""probe_http and curl must name the same situation the same way.

Learners check by hand with curl, and the course explains curl's exit codes; if the probe and
curl disagreed about a situation, the lesson would contradict the tool. The servers come from
test_probe.py so both modules exercise exactly the same misbehaviour.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import pytest

from portbinding.probe import OUTCOME_CLASS, Outcome, probe_http
from tests.support.local_server import (
    JUPYTER,
    Handler,
    close_without_reply,
    closed_port,
    never_answer,
    reset_after_request,
    serving,
)

CURL = shutil.which("curl")
pytestmark = pytest.mark.skipif(CURL is None, reason="curl is not on PATH")

# curl exit codes: 0 success, 7 could not connect, 28 operation timed out,
# 52 empty reply from server, 56 failure receiving data (connection reset).
CURL_EXIT_CLASS = {0: "ok", 7: "refused", 28: "timeout", 52: "reset_or_empty", 56: "reset_or_empty"}

CURL_MAX_TIME = 2


@contextmanager
def situation_url(handler: Handler | None) -> Iterator[str]:
    """The URL of a server running ``handler``, or of a closed port for ``None``."""
    if handler is None:
        with nullcontext():
            yield f"http://127.0.0.1:{closed_port()}/api"
        return
    with serving(handler) as server:
        yield server.url


def curl_exit_code(url: str) -> int:
    assert CURL is not None
    completed = subprocess.run(
        # --noproxy: the probe never uses a proxy, so curl must not either, even if the
        # environment sets one.
        [CURL, "-sS", "-o", "/dev/null", "--noproxy", "*", "--max-time", str(CURL_MAX_TIME), url],
        capture_output=True,
        text=True,
        timeout=CURL_MAX_TIME + 10,
        check=False,
    )
    return completed.returncode


@pytest.mark.parametrize(
    ("handler", "outcome", "curl_exit"),
    [
        pytest.param(JUPYTER, "ok", 0, id="ok"),
        pytest.param(None, "refused", 7, id="refused"),
        pytest.param(reset_after_request, "reset", 56, id="reset"),
        pytest.param(close_without_reply, "empty_reply", 52, id="empty_reply"),
        pytest.param(never_answer, "timeout", 28, id="timeout"),
    ],
)
def test_probe_and_curl_agree(handler: Handler | None, outcome: Outcome, curl_exit: int) -> None:
    with situation_url(handler) as url:
        result = probe_http(url, timeout=0.5)
        code = curl_exit_code(url)
    # Check each side against the situation too, so two identical mistakes cannot agree.
    assert result.outcome == outcome, result.detail
    assert code == curl_exit, f"curl exited {code} for {url}"
    assert OUTCOME_CLASS[result.outcome] == CURL_EXIT_CLASS[code]
