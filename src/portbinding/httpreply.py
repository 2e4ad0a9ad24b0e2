"""Reading an HTTP/1.x reply from the bytes received so far: pure parsing, no sockets.

The probe reads a reply byte by byte under a deadline (:mod:`probe`); this says, for what has
arrived, whether it is HTTP at all, what its final status is (interim 1xx replies skipped),
what the body holds so far (chunked encoding decoded), and whether the body is complete -- so
the probe can stop as soon as the answer is known.
"""

from __future__ import annotations

from dataclasses import dataclass


class NotHttp:
    """Marker: the bytes received cannot be the start of an HTTP reply."""


@dataclass(frozen=True)
class Reply:
    """A reply's final status line and its body (possibly still partial)."""

    status: int
    reason: str
    body: bytes


def _split_head(data: bytes) -> tuple[bytes, bytes] | None:
    """(head, rest) at the first blank line, or None if the head is not complete yet."""
    # Servers should end the head with CRLF CRLF; accept bare LF LF as curl does.
    ends = [(index, len(marker)) for marker in (b"\r\n\r\n", b"\n\n") if (index := data.find(marker)) >= 0]
    if not ends:
        return None
    index, size = min(ends)
    return data[:index], data[index + size :]


def _parse_head(head: bytes) -> tuple[int, str, dict[str, str]] | None:
    lines = head.decode("latin-1").splitlines()
    words = lines[0].split(" ", 2) if lines else []
    if len(words) < 2 or not words[0].startswith("HTTP/") or not (words[1].isdigit() and len(words[1]) == 3):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return int(words[1]), words[2].strip() if len(words) > 2 else "", headers


def _final_response(data: bytes) -> tuple[int, str, dict[str, str], bytes] | NotHttp | None:
    """The final (non-1xx) response head and its raw body bytes, skipping interim 1xx replies."""
    while True:
        if not b"HTTP/".startswith(data[:5]):
            return NotHttp()
        split = _split_head(data)
        if split is None:
            return None
        head, rest = split
        parsed = _parse_head(head)
        if parsed is None:
            return NotHttp()
        status, reason, headers = parsed
        # 1xx replies (e.g. 103 Early Hints) are interim; the real answer follows them.
        if 100 <= status < 200 and status != 101:
            data = rest
            continue
        return status, reason, headers, rest


def parse_reply(data: bytes) -> Reply | NotHttp | None:
    """A parsed reply (body possibly partial), NotHttp, or None while the head is incomplete."""
    found = _final_response(data)
    if found is None or isinstance(found, NotHttp):
        return found
    status, reason, headers, raw_body = found
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body, _ = _dechunk(raw_body)
    else:
        body = raw_body
    return Reply(status=status, reason=reason, body=body)


def body_complete(data: bytes) -> bool:
    """True when the whole body has arrived as announced (Content-Length or chunked)."""
    found = _final_response(data)
    if found is None or isinstance(found, NotHttp):
        return False
    status, _, headers, raw_body = found
    if status in (204, 304):
        return True
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return _dechunk(raw_body)[1]
    length = headers.get("content-length", "")
    if length.isdigit():
        return len(raw_body) >= int(length)
    return False  # the body ends when the server closes the connection


def _dechunk(raw: bytes) -> tuple[bytes, bool]:
    """Decode a chunked body as far as it goes: (body so far, whether the last chunk was seen)."""
    body = bytearray()
    position = 0
    while True:
        line_end = raw.find(b"\r\n", position)
        if line_end < 0:
            return bytes(body), False
        size_text = raw[position:line_end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return bytes(body), False  # not valid chunking; keep what decoded cleanly
        if size == 0:
            return bytes(body), True
        start = line_end + 2
        body += raw[start : start + size]
        if len(raw) < start + size + 2:
            return bytes(body), False
        position = start + size + 2
