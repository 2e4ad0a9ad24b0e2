"""portbinding.probe against real servers on 127.0.0.1, one per network situation a learner meets.

The servers are tests/support/local_server.py's tiny raw-socket servers, so each can misbehave
exactly like docker-proxy does: reset, close empty, hang, or speak something other than HTTP.
"""

from __future__ import annotations

import json
import threading
import time
from typing import get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portbinding.ports import bracket_host
from portbinding.probe import (
    OUTCOME_CLASS,
    Outcome,
    ProbeResult,
    is_jupyter,
    probe_http,
    probe_tcp,
    wait_for,
)
from tests.support.local_server import (
    JUPYTER,
    NOT_FOUND,
    PLAIN_TEXT,
    SERVER_IO_TIMEOUT,
    chunked_with_early_hints,
    close_without_reply,
    closed_port,
    headers_then_reset,
    keep_alive_reply,
    never_answer,
    reset_after_request,
    serving,
    ssh_banner,
)


def test_jupyter_api_is_ok_and_recognised() -> None:
    with serving(JUPYTER) as server:
        result = probe_http(server.url, timeout=2.0)
    assert result.outcome == "ok", result.detail
    assert result.ok
    assert result.reachable
    assert result.http_status == 200
    assert json.loads(result.body_excerpt) == {"version": "2.0.0"}
    assert result.target == server.url
    assert is_jupyter(result)


def test_404_is_unexpected_response_with_status() -> None:
    with serving(NOT_FOUND) as server:
        result = probe_http(server.url, timeout=2.0)
    assert result.outcome == "unexpected_response"
    assert result.http_status == 404
    assert result.reachable
    assert not result.ok
    assert "404" in result.detail
    assert not is_jupyter(result)


def test_404_is_ok_when_expected() -> None:
    with serving(NOT_FOUND) as server:
        result = probe_http(server.url, timeout=2.0, expect_status={404})
    assert result.ok


def test_plain_text_200_is_ok_but_not_jupyter() -> None:
    with serving(PLAIN_TEXT) as server:
        result = probe_http(server.url, timeout=2.0)
    assert result.ok
    assert result.body_excerpt == "hello, not jupyter\n"
    assert not is_jupyter(result)


def test_closed_port_is_refused() -> None:
    result = probe_http(f"http://127.0.0.1:{closed_port()}/api", timeout=2.0)
    assert result.outcome == "refused"
    assert not result.reachable
    assert result.http_status is None


def test_reset_after_accept_is_reset() -> None:
    with serving(reset_after_request) as server:
        result = probe_http(server.url, timeout=2.0)
    assert result.outcome == "reset", result.detail
    assert not result.reachable


def test_close_without_reply_is_empty_reply() -> None:
    with serving(close_without_reply) as server:
        result = probe_http(server.url, timeout=2.0)
    assert result.outcome == "empty_reply", result.detail


def test_silent_server_times_out_on_time() -> None:
    timeout = 0.3
    with serving(never_answer) as server:
        result = probe_http(server.url, timeout=timeout)
    assert result.outcome == "timeout", result.detail
    assert timeout * 1000 * 0.9 <= result.elapsed_ms < (timeout + 0.5) * 1000


def test_non_http_banner_is_unexpected_response() -> None:
    with serving(ssh_banner) as server:
        result = probe_http(server.url, timeout=2.0)
    assert result.outcome == "unexpected_response"
    assert result.http_status is None
    assert result.body_excerpt.startswith("SSH-2.0")
    assert "not in HTTP" in result.detail


def test_unresolvable_name_is_unresolved() -> None:
    result = probe_http("http://no-such-host.invalid/api", timeout=2.0)
    assert result.outcome == "unresolved", result.detail


def test_complete_reply_on_kept_open_connection_is_not_a_timeout() -> None:
    # Stopping at Content-Length matters: waiting for the close would report a timeout.
    with serving(keep_alive_reply) as server:
        result = probe_http(server.url, timeout=1.0)
    assert result.ok
    assert is_jupyter(result)
    # Well under the 1 s timeout: the probe stopped at Content-Length (margin for a busy CI box).
    assert result.elapsed_ms < 900, result.elapsed_ms


def test_chunked_body_after_interim_reply() -> None:
    with serving(chunked_with_early_hints) as server:
        result = probe_http(server.url, timeout=1.0)
    assert result.http_status == 200
    assert json.loads(result.body_excerpt) == {"version": "2.9.9"}
    assert is_jupyter(result)
    # Well under the 1 s timeout: the probe stopped at Content-Length (margin for a busy CI box).
    assert result.elapsed_ms < 900, result.elapsed_ms


def test_reset_after_headers_still_reports_the_status() -> None:
    with serving(headers_then_reset) as server:
        result = probe_http(server.url, timeout=1.0)
    assert result.ok
    assert result.http_status == 200
    assert "cut short" in result.detail


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1:8888/api",
        "127.0.0.1:8888",
        "http:///api",
        "http://127.0.0.1:99999/",
        "http://127.0.0.1:port/",
        "http://[::1/",
    ],
)
def test_malformed_url_raises_value_error(url: str) -> None:
    with pytest.raises(ValueError):
        probe_http(url, timeout=0.5)


def test_non_positive_timeout_raises() -> None:
    with pytest.raises(ValueError, match="timeout"):
        probe_http("http://127.0.0.1:1/", timeout=0)


@settings(max_examples=40, deadline=None)
@given(
    host=st.sampled_from(["127.0.0.1", "127.0.0.2", "localhost", "::1"]),
    port=st.integers(min_value=0, max_value=65535),
)
def test_probes_never_raise_on_loopback(host: str, port: int) -> None:
    http_result = probe_http(f"http://{bracket_host(host)}:{port}/", timeout=0.2)
    tcp_result = probe_tcp(host, port, timeout=0.2)
    assert http_result.outcome in OUTCOME_CLASS
    assert tcp_result.outcome in OUTCOME_CLASS
    assert http_result.elapsed_ms < 1000


# ---------------------------------------------------------------------------------------------
# probe_tcp, is_jupyter, ProbeResult


def test_probe_tcp_ok_on_open_port() -> None:
    with serving(close_without_reply) as server:
        result = probe_tcp("127.0.0.1", server.port, timeout=2.0)
    assert result.ok
    assert result.target == f"127.0.0.1:{server.port}"
    assert "docker-proxy" in result.detail


def test_probe_tcp_refused_on_closed_port() -> None:
    result = probe_tcp("127.0.0.1", closed_port(), timeout=2.0)
    assert result.outcome == "refused"


def test_probe_tcp_is_fooled_where_probe_http_is_not() -> None:
    # The false positive the course teaches: a connect succeeds, yet nothing answers.
    with serving(reset_after_request) as server:
        assert probe_tcp("127.0.0.1", server.port, timeout=2.0).ok
        assert probe_http(server.url, timeout=2.0).outcome == "reset"


@pytest.mark.parametrize(
    ("host", "port"),
    [("", 80), ("127.0.0.1", -1), ("127.0.0.1", 65536)],
)
def test_probe_tcp_rejects_bad_arguments(host: str, port: int) -> None:
    with pytest.raises(ValueError):
        probe_tcp(host, port, timeout=0.5)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, '{"version": "2.14.0"}', True),
        (200, '{"versions": []}', False),
        (200, '["version"]', False),
        (200, "version", False),
        (403, '{"version": "2.14.0"}', False),
        (None, "", False),
    ],
)
def test_is_jupyter(status: int | None, body: str, expected: bool) -> None:
    result = ProbeResult(outcome="ok", detail="", elapsed_ms=1.0, http_status=status, body_excerpt=body)
    assert is_jupyter(result) is expected


def test_to_dict_has_stable_keys() -> None:
    result = ProbeResult(outcome="reset", detail="d", elapsed_ms=1.23456, target="http://x/")
    assert result.to_dict() == {
        "outcome": "reset",
        "detail": "d",
        "elapsed_ms": 1.235,
        "http_status": None,
        "body_excerpt": "",
        "target": "http://x/",
    }


def test_outcome_class_covers_every_outcome() -> None:
    assert set(OUTCOME_CLASS) == set(get_args(Outcome))
    assert OUTCOME_CLASS["reset"] == OUTCOME_CLASS["empty_reply"] == "reset_or_empty"


# ---------------------------------------------------------------------------------------------
# wait_for


def test_wait_for_sees_a_server_soon_after_it_listens() -> None:
    with serving(JUPYTER, start=False) as server:
        starter = threading.Timer(0.15, server.start)
        starter.start()
        try:
            # max_interval bounds the lag by design; the 250 ms default would allow up to 250 ms.
            result = wait_for(lambda: probe_http(server.url, timeout=1.0), timeout=5.0, max_interval=0.05)
            returned_at = time.monotonic()
        finally:
            starter.cancel()
            starter.join(SERVER_IO_TIMEOUT)
        assert result.ok, result.detail
        assert server.listen_time is not None
        # Adaptive polling notices within a few intervals; a fixed 1 s poll would not (margin for CI).
        lag = returned_at - server.listen_time
        assert lag < 0.3, f"noticed the server {lag * 1000:.0f} ms after it listened"


def test_wait_for_returns_at_once_when_not_alive() -> None:
    url = f"http://127.0.0.1:{closed_port()}/api"
    died = threading.Event()
    died_at: list[float] = []

    def container_exits() -> None:
        died_at.append(time.monotonic())
        died.set()

    killer = threading.Timer(0.1, container_exits)
    killer.start()
    try:
        result = wait_for(lambda: probe_http(url, timeout=0.5), timeout=30.0, alive=lambda: not died.is_set())
        returned_at = time.monotonic()
    finally:
        killer.cancel()
        killer.join(SERVER_IO_TIMEOUT)
    assert result.outcome == "refused"
    # At most one back-off pause (<= max_interval 0.25 s) plus one quick check after the exit --
    # far from the 30 s timeout (margin for a busy CI box).
    assert returned_at - died_at[0] < 1.0, returned_at - died_at[0]


def test_wait_for_checks_once_when_dead_from_the_start() -> None:
    calls: list[ProbeResult] = []
    url = f"http://127.0.0.1:{closed_port()}/api"

    def check() -> ProbeResult:
        calls.append(probe_http(url, timeout=0.5))
        return calls[-1]

    result = wait_for(check, timeout=30.0, alive=lambda: False)
    assert len(calls) == 1
    assert result is calls[0]


def test_wait_for_stops_at_the_deadline() -> None:
    calls: list[ProbeResult] = []
    url = f"http://127.0.0.1:{closed_port()}/api"

    def check() -> ProbeResult:
        calls.append(probe_http(url, timeout=0.5))
        return calls[-1]

    started = time.monotonic()
    result = wait_for(check, timeout=0.3)
    elapsed = time.monotonic() - started
    assert result.outcome == "refused"
    # Never before the deadline; after it by at most one probe's own timeout (0.5 s).
    assert 0.3 <= elapsed < 0.85, elapsed
    assert len(calls) >= 4  # 5, 10, 20, 40, 80, 160 ms back-off fits several attempts


def test_a_url_that_is_not_http_is_refused_in_a_learners_words() -> None:
    """No internal function names: the message says what to give instead."""
    with pytest.raises(ValueError, match=r"plain HTTP: give a URL like http://localhost:8888/") as caught:
        probe_http("notaurl", timeout=0.5)
    assert "probe_http" not in str(caught.value), caught.value


@pytest.mark.parametrize("server", [reset_after_request, close_without_reply], ids=["reset", "empty"])
def test_a_reset_names_no_cause_the_probe_cannot_see(server: object) -> None:
    """A reset or an empty reply has many causes (loopback bind, wrong container port, a slow start):
    the probe's words say what happened on the wire and never blame one of them."""
    with serving(server) as served:  # type: ignore[arg-type]
        result = probe_http(served.url, timeout=2.0)
    assert result.outcome in ("reset", "empty_reply"), result.detail
    words = result.detail.replace(served.url.split("//")[1].split("/")[0], "TARGET")  # its own address
    assert "127.0.0.1" not in words and "loopback" not in words, (
        f"the probe blames a loopback bind it cannot see: {result.detail}"
    )
    assert "nothing answered behind" in result.detail, f"the words say what the wire showed: {result.detail}"
