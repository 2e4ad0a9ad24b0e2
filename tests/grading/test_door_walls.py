"""Each sandbox's door is its own: peer credentials, budget, caps and nesting, on real sockets.

The round trip (``test_round_trip``) shows a classmate's sandbox cannot even see another's
door; these tests show the door holds by itself, should a socket ever be reached: a process
of another uid is turned away before it takes a slot and without a record, and whatever the
sandbox's own uid sends counts against its budget and is kept small.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from portbinding.discovery import find_engine
from portbinding.engine import Engine
from portbinding.grading.door import MAX_CONNECTIONS, MAX_KIND_CHARS, Door
from portbinding.grading.judge import Judge
from portbinding.grading.protocol import MAX_DEPTH, ProtocolError, read_line

SANDBOX_UID = 1_800_099_000  # a uid of the grading range that no sandbox of a test run claims first


@pytest.fixture
def door(grading_host: Any) -> Iterator[Door]:
    """A door for SANDBOX_UID, in a folder that uid may enter, with a budget of 3 requests."""
    folder = Path(tempfile.mkdtemp(prefix="door-walls-", dir="/tmp"))
    os.chmod(folder, 0o711)
    client, info = find_engine()
    judge = Judge(Engine(client, info, owner="tests"))
    try:
        with Door(
            judge,
            socket_path=folder / "door.sock",
            decoy_path=folder / "engine.sock",
            peer_uid=SANDBOX_UID,
            budget=3,
        ) as served:
            yield served
    finally:
        client.close()
        shutil.rmtree(folder, ignore_errors=True)


def nothing_back(sock: socket.socket) -> bool:
    """The other end closed without a word (an orderly close, or a reset: both say nothing)."""
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


def as_sandbox(door: Door, *payloads: bytes) -> list[Any]:
    """Send each payload as one request from a process of the sandbox's uid; the replies (None: none)."""
    replies = _as_uid(SANDBOX_UID, lambda: [_ask(door.socket_path, payload) for payload in payloads])
    assert isinstance(replies, list), replies
    return replies


def _ask(path: Path, payload: bytes) -> Any:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(20)
        sock.connect(str(path))
        sock.sendall(payload + b"\n")
        return json.loads(sock.makefile().readline() or "null")


def _as_uid(uid: int, work: Callable[[], Any]) -> Any:
    """Run ``work`` in a forked child that has become ``uid`` (no groups); its JSON-able result."""
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: never returns into pytest
        code = 0
        try:
            os.close(read)
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            data = json.dumps(work()).encode()
        except BaseException as error:  # reported to the parent, which fails the test with it
            data, code = json.dumps({"error": repr(error)}).encode(), 1
        with contextlib.suppress(OSError):
            os.write(write, data)
        os._exit(code)
    os.close(write)
    chunks = []
    with os.fdopen(read, "rb") as pipe:
        chunks.append(pipe.read())
    _, status = os.waitpid(child, 0)
    result = json.loads(b"".join(chunks) or b"null")
    assert os.WEXITSTATUS(status) == 0, f"the sandbox-uid process failed: {result}"
    return result


def test_the_doors_sockets_are_the_sandbox_uids_alone(door: Door) -> None:
    """door.sock and the decoy belong to the sandbox's uid, mode 0600."""
    for path in (door.socket_path, door.decoy_path):
        assert path is not None
        info = path.stat()
        assert (info.st_uid, info.st_mode & 0o777) == (SANDBOX_UID, 0o600), (
            path,
            info.st_uid,
            oct(info.st_mode),
        )


def test_another_uid_is_turned_away_without_a_slot_or_a_record(door: Door) -> None:
    """Connections from another uid (here root) get nothing, hold no slot, and record nothing."""
    held = []
    for _ in range(MAX_CONNECTIONS * 3):  # more than the door's slots: none may be held by them
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(str(door.socket_path))  # blocking: waits while the door's backlog is full
        sock.settimeout(5)
        held.append(sock)
    decoy = socket.socket(socket.AF_UNIX)
    decoy.settimeout(5)
    assert door.decoy_path is not None
    decoy.connect(str(door.decoy_path))
    with contextlib.suppress(OSError):  # the door may close on us before we speak: as good
        decoy.sendall(b"GET /containers/json HTTP/1.0\r\n\r\n")
    assert nothing_back(decoy), "the decoy answered another uid (and would have blamed the sandbox)"
    for sock in held:
        with contextlib.suppress(OSError):  # already closed by the door: as good
            sock.sendall(b'{"kind": "check_run"}\n')
        assert nothing_back(sock), "the door answered another uid"
        sock.close()
    decoy.close()
    # Meanwhile the sandbox's own request is served at once: no slot was taken from it.
    replies = as_sandbox(door, b'{"kind": "no-such-check"}')
    assert replies[0]["cause"] == "invalid", replies
    assert door.turned_away == MAX_CONNECTIONS * 3 + 1, door.turned_away
    events = door.ledger.events()
    assert [e["kind"] for e in events] == ["no-such-check"], (
        f"another uid's connections were recorded: {events}"
    )
    assert not door.ledger.violations(), "another uid's visit to the decoy was held against the sandbox"


def test_every_request_counts_against_the_budget_and_is_kept_small(door: Door) -> None:
    """Unknown kinds, unreadable and oversize requests all count; the ledger keeps a few short strings."""
    replies = as_sandbox(
        door,
        json.dumps({"kind": "x" * 100_000}).encode(),
        b"not json at all",
        b"[" * 100 + b"]" * 100,
        json.dumps({"kind": "check_run", "line": "docker run x"}).encode(),
    )
    assert [r["cause"] for r in replies] == ["invalid", "invalid", "invalid", "over_budget"], replies
    assert "the most the grader runs" in replies[-1]["message"], replies[-1]
    assert f"nested more than {MAX_DEPTH}" in replies[2]["message"], replies[2]
    events = door.ledger.events()
    assert len(events) == 3, f"requests past the budget were recorded: {events}"
    assert all(len(e["kind"]) <= MAX_KIND_CHARS and len(e["message"]) <= 2000 for e in events), events
    assert door.fault is None, door.fault


def test_json_nested_past_the_limit_is_refused_before_it_is_parsed() -> None:
    """A million brackets are a clear ProtocolError, not a RecursionError in the door's thread."""
    deep = b'{"kind": "check_run", "line": ' + b"[" * 1_000_000 + b"]" * 1_000_000 + b"}\n"
    quoted = b'{"kind": "check_run", "line": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}\n'
    for payload in (deep, quoted):
        left, right = socket.socketpair()
        with left, right:
            sender = threading.Thread(target=left.sendall, args=(payload,), daemon=True)
            sender.start()  # larger than the socket's buffer: sent while it is read
            if payload is deep:
                with pytest.raises(ProtocolError, match=f"nested more than {MAX_DEPTH} levels"):
                    read_line(right, limit=3_000_000, timeout=10)
            else:
                request = read_line(right, limit=3_000_000, timeout=10)
                assert request["kind"] == "check_run", "brackets inside a string must not count"
            right.shutdown(socket.SHUT_RDWR)
            sender.join(timeout=10)
