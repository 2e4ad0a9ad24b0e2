"""What the learner's checks and the grading door say to each other.

One request and one reply per connection, each a single line of JSON on a Unix socket. This
module is shared by both sides and imports only the standard library: it is loaded inside the
grading sandbox, where the container SDK is neither needed nor reachable.
"""

from __future__ import annotations

import itertools
import json
import re
import socket
import time
from dataclasses import asdict, dataclass, field
from typing import Any

# The door's socket, set in the kernel's environment by the grading sandbox.
DOOR_ENV = "PORTBINDING_GRADING_DOOR"

# A request carries at most a small build context (ex03); anything larger is refused unread.
MAX_REQUEST_BYTES = 1_500_000
MAX_REPLY_BYTES = 256_000
# How long a learner's check may wait for the door: the door's own per-check budget plus slack.
CLIENT_TIMEOUT_S = 150.0
# Requests are two levels deep; a parser recursing into a million brackets must never see them.
MAX_DEPTH = 32
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKETS = bytes(range(256)).translate(None, b"[]{}")  # every byte but brackets: deleted


class ProtocolError(Exception):
    """A peer sent something that is not one line of JSON within the limits."""


@dataclass(frozen=True)
class CheckResult:
    """The verdict on one answer: did it work when the grader ran it, and why (not).

    ``cause`` is a diagnosis cause (``ok``, ``loopback_only``, ``crashed``, ...) or one of the
    grader's own: ``refused`` (the course policy does not allow the line), ``invalid`` (the
    answer is not usable, e.g. not a string), ``wrong_answer`` (it runs, but does not do what
    the question asks), ``grader_error`` (a problem on the grader's side, not the learner's).
    ``message`` is written for the learner: what was expected, what was observed, the next step.
    """

    passed: bool
    cause: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> CheckResult:
        """Read a reply; anything malformed becomes a grader_error result, never an exception."""
        if not isinstance(data, dict):
            return cls(False, "grader_error", "The grader sent a reply this check cannot read.")
        details = data.get("details")
        return cls(
            passed=data.get("passed") is True,
            cause=str(data.get("cause", "grader_error")),
            message=str(data.get("message", "")),
            details=details if isinstance(details, dict) else {},
        )


def send_line(sock: socket.socket, payload: dict[str, Any]) -> None:
    """Send ``payload`` as one line of JSON (the socket's own timeout bounds the send)."""
    sock.sendall(json.dumps(payload, separators=(",", ":")).encode() + b"\n")


def read_line(sock: socket.socket, *, limit: int, timeout: float) -> dict[str, Any]:
    """Read one JSON line of at most ``limit`` bytes within ``timeout`` seconds.

    Raises ProtocolError for a line that is too long, never ends, or is not a JSON object.
    """
    deadline = time.monotonic() + timeout
    buffer = bytearray()
    while b"\n" not in buffer:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ProtocolError(f"no complete line within {timeout:g} s")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise ProtocolError(f"no complete line within {timeout:g} s") from None
        if not chunk:
            break
        buffer += chunk
        if len(buffer) > limit:
            raise ProtocolError(f"the message is longer than {limit} bytes")
    line = bytes(buffer).split(b"\n", 1)[0]
    if json_depth(line) > MAX_DEPTH:
        raise ProtocolError(f"the message is nested more than {MAX_DEPTH} levels deep")
    try:
        document = json.loads(line)
    except (ValueError, RecursionError):
        raise ProtocolError("the message is not JSON") from None
    if not isinstance(document, dict):
        raise ProtocolError("the message is not a JSON object")
    return document


def json_depth(line: bytes) -> int:
    """How deeply ``line``'s arrays and objects nest (brackets inside strings do not count)."""
    brackets = _STRING.sub(b"", line).translate(None, _BRACKETS)
    steps = (1 if byte in b"[{" else -1 for byte in brackets)
    return max(itertools.accumulate(steps), default=0)
