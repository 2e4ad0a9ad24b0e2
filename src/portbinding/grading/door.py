"""The grading door: the only way learner code under autograde reaches the container engine.

A small server in the trusted grading process, listening on a Unix socket inside one
submission's sandbox. Each connection carries one JSON request (``check_run``,
``check_config``, ``check_image``) and gets one JSON verdict back; the work itself is done by
``Judge`` -- course policy, fresh names and ports, limits, labels, removal.

The door also serves a *decoy*: the sandbox mounts it where the engine's socket normally is
(``/run/docker.sock``). Anything that connects there (``import docker``, ``curl --unix-socket``)
gets an HTTP 403 whose message explains the rule, and the attempt is recorded in the ledger,
which the grader turns into a zero with that explanation as feedback.

Each door is its sandbox's alone: its sockets belong to the sandbox's uid (mode 0600, in a
folder only that uid may enter), and every connection's peer credentials (SO_PEERCRED) are
checked -- another uid is turned away before it takes a connection slot, and nothing is
recorded against this sandbox. Every request the sandbox sends, well-formed or not, counts
against its budget; what the ledger keeps of a request is capped in size.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from portbinding.grading.crosscheck import request_settings
from portbinding.grading.judge import Judge
from portbinding.grading.protocol import (
    MAX_REQUEST_BYTES,
    CheckResult,
    ProtocolError,
    read_line,
    send_line,
)

LOGGER = logging.getLogger(__name__)

REQUEST_READ_TIMEOUT_S = 10.0
SEND_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 4
# Longer than any single check (readiness wait + build + diagnosis), so close() outlasts it.
HANDLER_JOIN_S = 180.0
MAX_KIND_CHARS = 40  # what the ledger keeps of a learner's strings
MAX_CAUSE_CHARS = 40
MAX_MESSAGE_CHARS = 2000

ENGINE_VIOLATION = (
    "This notebook tried to use the container engine directly ({how}) while it was being graded. "
    "Graded notebooks may start containers only through portbinding.grading's checks "
    "(check_fix, check_config, check_image), which run them safely; direct access is refused "
    "and the whole notebook is graded zero."
)


class Ledger:
    """What happened behind the door, for the trusted grader: every check and every violation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []

    def check(self, request: dict[str, Any], result: CheckResult, *, started: float, ended: float) -> None:
        """Record a request and its verdict (times from time.monotonic, to match cells to checks).

        Every string is capped: the ledger lives in the trusted grader and ends up on disk. The
        question's settings are kept (small) for the cross-check of test cells (``crosscheck``).
        """
        with self._lock:
            self._events.append({
                "event": "check", "kind": _printable(request.get("kind"), MAX_KIND_CHARS),
                "settings": request_settings(request), "passed": result.passed,
                "cause": _printable(result.cause, MAX_CAUSE_CHARS),
                "message": result.message[:MAX_MESSAGE_CHARS], "started": started, "ended": ended,
            })  # fmt: skip

    def violation(self, code: str, message: str) -> None:
        """Record something a graded notebook must not do; one record per code is enough."""
        with self._lock:
            if any(e["event"] == "violation" and e["code"] == code for e in self._events):
                return
            self._events.append(
                {"event": "violation", "code": code, "message": message, "at": time.monotonic()}
            )

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(event) for event in self._events]

    def violations(self) -> list[dict[str, Any]]:
        return [e for e in self.events() if e["event"] == "violation"]

    def checks(self) -> list[dict[str, Any]]:
        return [e for e in self.events() if e["event"] == "check"]


class Door:
    """Serves ``judge`` on ``socket_path`` (and the engine decoy on ``decoy_path``) until closed.

    Only processes of ``peer_uid`` (default: this process's own uid) are served; the sockets
    are made theirs, mode 0600. At most ``budget`` requests are judged (default: the judge's
    ``max_checks``); every request counts, whatever it holds.
    """

    def __init__(
        self,
        judge: Judge,
        *,
        socket_path: Path,
        decoy_path: Path | None = None,
        ledger: Ledger | None = None,
        peer_uid: int | None = None,
        budget: int | None = None,
    ) -> None:
        self.judge = judge
        self.socket_path = socket_path
        self.decoy_path = decoy_path
        self.ledger = ledger or Ledger()
        self.peer_uid = os.getuid() if peer_uid is None else peer_uid
        self.budget = judge.limits.max_checks if budget is None else budget
        self.fault: str | None = None  # set when the door itself broke: the grader's fault
        self.requests = 0
        self.turned_away = 0  # connections from another uid
        self._stop = threading.Event()
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._count_lock = threading.Lock()
        self._listeners: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._handlers: list[threading.Thread] = []
        self._handlers_lock = threading.Lock()

    def start(self) -> Door:
        """Bind the sockets (the peer uid's, mode 0600) and start serving."""
        self._serve(self.socket_path, self._answer, name="door")
        if self.decoy_path is not None:
            self._serve(self.decoy_path, self._refuse, name="decoy")
        return self

    def close(self) -> None:
        """Stop accepting; a check in progress finishes (and removes its container) first.

        Waiting matters: the sandbox sweeps the session's containers right after this, and a
        check still starting a container would otherwise create one after the sweep.
        """
        self._stop.set()
        for listener in self._listeners:
            with contextlib.suppress(OSError):  # wakes accept() at once: no polling
                listener.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5.0)
        for listener in self._listeners:
            listener.close()
        with self._handlers_lock:
            handlers = list(self._handlers)
        for handler in handlers:
            handler.join(timeout=HANDLER_JOIN_S)
        for path in (self.socket_path, self.decoy_path):
            if path is not None:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    def __enter__(self) -> Door:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _serve(self, path: Path, handler: Callable[[socket.socket], None], *, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        os.chmod(path, 0o600)
        os.chown(path, self.peer_uid, -1)
        listener.listen(8)
        self._listeners.append(listener)
        thread = threading.Thread(
            target=self._accept_loop, args=(listener, handler), name=f"grading-{name}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self, listener: socket.socket, handler: Callable[[socket.socket], None]) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError as error:
                if not self._stop.is_set():
                    self.fault = f"the grading door stopped accepting connections ({error})"
                    LOGGER.error("grading door: %s", self.fault)
                return
            if peer_uid(connection) != self.peer_uid:
                # Not this sandbox: no slot, no record, no reply. (The socket's mode and folder
                # already keep other uids out; this holds even if they did not.)
                with self._count_lock:
                    self.turned_away += 1
                connection.close()
                continue
            if not self._slots.acquire(blocking=False):
                connection.close()  # a notebook opening connections in a loop gets no more than a few
                continue
            worker = threading.Thread(target=self._handle, args=(connection, handler), daemon=True)
            with self._handlers_lock:
                self._handlers = [t for t in self._handlers if t.is_alive()] + [worker]
            worker.start()

    def _handle(self, connection: socket.socket, handler: Callable[[socket.socket], None]) -> None:
        try:
            with connection:
                handler(connection)
        except OSError as error:
            LOGGER.info("door connection ended early: %s", error)
        except Exception as error:  # a bug in the grader, not the notebook's doing: say so, keep serving
            LOGGER.exception("grading door failed on a request")
            self.fault = f"the grading door failed on a request ({type(error).__name__}: {str(error)[:200]})"
        finally:
            self._slots.release()

    def _answer(self, connection: socket.socket) -> None:
        started = time.monotonic()
        with self._count_lock:
            self.requests += 1
            over = self.requests > self.budget
        try:
            request = read_line(connection, limit=MAX_REQUEST_BYTES, timeout=REQUEST_READ_TIMEOUT_S)
        except ProtocolError as error:
            request = {"kind": "(unreadable)"}
            result = CheckResult(
                False, "invalid", f"The grader could not read this check's request: {error}."
            )
        else:
            if over:
                result = CheckResult(
                    False,
                    "over_budget",
                    f"This notebook already sent {self.budget} requests to the grader, the most the grader "
                    "runs for one notebook; this one was not run.",
                )
            else:
                result = self.judge.handle(request)
        if not over:  # past the budget, nothing more is kept: the ledger stays small
            self.ledger.check(request, result, started=started, ended=time.monotonic())
        connection.settimeout(SEND_TIMEOUT_S)
        send_line(connection, result.to_dict())

    def _refuse(self, connection: socket.socket) -> None:
        # Connecting is the violation, whatever is (or is not) sent afterwards.
        how = "a connection to /run/docker.sock"
        connection.settimeout(2.0)
        with contextlib.suppress(OSError):
            first = connection.recv(65536)
            if first.split(b" ", 1)[0] in (b"GET", b"POST", b"HEAD", b"PUT", b"DELETE"):
                how = _printable(first.split(b"\r\n", 1)[0].decode("latin-1"), 80) + " on /run/docker.sock"
        message = ENGINE_VIOLATION.format(how=how)
        self.ledger.violation("engine_access", message)
        with contextlib.suppress(OSError):
            body = json.dumps({"message": message}).encode()
            connection.sendall(
                b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )


def peer_uid(connection: socket.socket) -> int | None:
    """The uid of the process at the other end of a Unix socket (SO_PEERCRED), or None."""
    try:
        data = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    _pid, uid, _gid = struct.unpack("iII", data)  # struct ucred: pid_t, uid_t, gid_t
    return int(uid)


def _printable(value: object, limit: int) -> str:
    """At most ``limit`` characters of ``value``, control characters replaced."""
    text = str(value)[:limit]
    return "".join(c if c.isprintable() else "?" for c in text)
