"""Rung views without an engine: how listeners are spelled, what curl would say."""

from __future__ import annotations

import pytest

from portbinding.challenge.rungs import curl_says, proc_hex
from portbinding.probe import ProbeResult
from portbinding.procnet import Listener, parse_proc_net_tcp


def test_listeners_are_spelled_as_proc_net_tcp_spells_them() -> None:
    """Hints quote /proc/net/tcp's hex so a learner can find the row: checked against real rows."""
    v4 = "  0: 0100007F:22B8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000 0 1 1 0\n"
    v6 = "  0: 00000000000000000000000000000000:1F40 00000000000000000000000000000000:0000 0A 0 0 0 0 0 0 0\n"
    for row, family in ((v4, "ipv4"), (v6, "ipv6")):
        (listener,) = parse_proc_net_tcp(f"sl local rem st\n{row}", family=family)  # type: ignore[arg-type]
        assert proc_hex(listener) == row.split()[1], (
            f"{listener} spelled {proc_hex(listener)}, the row says {row}"
        )
    assert proc_hex(Listener("::1", 8888, "ipv6")) == "00000000000000000000000001000000:22B8"


@pytest.mark.parametrize(
    "outcome, words",
    [
        ("refused", "curl: (7) Failed to connect to 127.0.0.1 port 23456: Connection refused"),
        ("reset", "curl: (56) Recv failure: Connection reset by peer"),
        ("empty_reply", "curl: (52) Empty reply from server"),
        ("timeout", "curl: (28) Operation timed out"),
    ],
)
def test_each_failure_reads_as_curl_prints_it(outcome: str, words: str) -> None:
    result = ProbeResult(outcome, "detail", 1.0, target="127.0.0.1:23456")  # type: ignore[arg-type]
    assert curl_says(result) == words


def test_an_answer_shows_its_status_and_body() -> None:
    result = ProbeResult("ok", "", 1.0, http_status=200, body_excerpt='{"version": "2.17.0"}')
    assert curl_says(result) == '< HTTP/1.1 200\n{"version": "2.17.0"}'
