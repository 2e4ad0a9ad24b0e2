"""The grading door: the only way learner code under autograde reaches the container engine.

A small server in the trusted grading process, listening on a Unix socket inside one
submission's sandbox. Each connection carries one JSON request (``check_run``,
``check_config``, ``check_image``) and gets one JSON verdict back; the work itself is done by
``Judge`` -- course policy, fresh names and ports, limits, labels, removal.

The door also serves a *decoy*: the sandbox mounts it where the engine's socket normally is
(``/run/docker.sock``). Anything that connects there (``import docker``, ``curl --unix-socket``)
gets an HTTP 403 whose message explains the rule, and the attempt is recorded in the ledger,
which the grader turns into a zero with that explanation as feedback.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
ACCEPT_POLL_S = 0.5
# Longer than any single check (readiness wait + build + diagnosis), so close() outlasts it.
HANDLER_JOIN_S = 180.0

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
        """Record a check and its verdict (times from time.monotonic, to match cells to checks)."""
        with self._lock:
            self._events.append({
                "event": "check", "kind": str(request.get("kind")), "passed": result.passed,
                "cause": result.cause, "message": result.message[:2000], "started": started, "ended": ended,
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
    """Serves ``judge`` on ``socket_path`` (and the engine decoy on ``decoy_path``) until closed."""

    def __init__(
        self,
        judge: Judge,
        *,
        socket_path: Path,
        decoy_path: Path | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        self.judge = judge
        self.socket_path = socket_path
        self.decoy_path = decoy_path
        self.ledger = ledger or Ledger()
        self._stop = threading.Event()
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._listeners: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._handlers: list[threading.Thread] = []
        self._handlers_lock = threading.Lock()

    def start(self) -> Door:
        """Bind the sockets (readable and writable by the sandbox's user) and start serving."""
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
        # The kernel runs as a throwaway user; the directory around the socket keeps others out.
        os.chmod(path, 0o666)
        listener.listen(8)
        # accept() wakes up regularly only to notice close(); connections are handled at once.
        listener.settimeout(ACCEPT_POLL_S)
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
            except TimeoutError:
                continue
            except OSError:
                return
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
        finally:
            self._slots.release()

    def _answer(self, connection: socket.socket) -> None:
        try:
            request = read_line(connection, limit=MAX_REQUEST_BYTES, timeout=REQUEST_READ_TIMEOUT_S)
        except ProtocolError as error:
            result = CheckResult(
                False, "invalid", f"The grader could not read this check's request: {error}."
            )
            connection.settimeout(SEND_TIMEOUT_S)
            send_line(connection, result.to_dict())
            return
        started = time.monotonic()
        result = self.judge.handle(request)
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
                how = first.split(b"\r\n", 1)[0].decode("latin-1")[:80] + " on /run/docker.sock"
        message = ENGINE_VIOLATION.format(how=how)
        self.ledger.violation("engine_access", message)
        with contextlib.suppress(OSError):
            body = json.dumps({"message": message}).encode()
            connection.sendall(
                b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
