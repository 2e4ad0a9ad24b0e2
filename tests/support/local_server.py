"""Tiny raw-socket servers on 127.0.0.1, one per network situation a learner meets.

Each can misbehave exactly like docker-proxy does -- reset, close empty, hang, or speak
something other than HTTP -- so the probe (tests/unit/test_probe.py) and curl
(tests/unit/test_probe_curl_agreement.py) can be checked against the same situations.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# Upper bound for any blocking socket call in the helper servers, so a broken test fails
# instead of hanging; well above anything a passing test needs.
SERVER_IO_TIMEOUT = 5.0

Handler = Callable[[socket.socket, threading.Event], None]


class LocalServer:
    """A TCP server on an ephemeral 127.0.0.1 port that runs ``handler`` for each connection.

    The port is bound at construction; ``start()`` calls ``listen()`` (recording when) and
    starts accepting, so a test can know the port before anything listens on it. ``close()``
    wakes the accept loop through a socketpair and sets ``stop`` so hanging handlers return.
    """

    def __init__(self, handler: Handler, *, host: str = "127.0.0.1", family: int = socket.AF_INET) -> None:
        self.handler = handler
        self.stop = threading.Event()
        self.listen_time: float | None = None
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.settimeout(SERVER_IO_TIMEOUT)
        self._listener.bind((host, 0))
        self.host = host
        self.port: int = self._listener.getsockname()[1]
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_write.settimeout(SERVER_IO_TIMEOUT)
        self._accept_thread: threading.Thread | None = None
        self._workers: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/api"

    def start(self) -> None:
        self.listen_time = time.monotonic()
        self._listener.listen(16)
        self._accept_thread = threading.Thread(target=self._accept_loop, name="local-server", daemon=True)
        self._accept_thread.start()

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_read, selectors.EVENT_READ)
            while not self.stop.is_set():
                for key, _ in selector.select(timeout=SERVER_IO_TIMEOUT):
                    if key.fileobj is self._wake_read:
                        return
                    conn, _ = self._listener.accept()
                    worker = threading.Thread(target=self._serve, args=(conn,), daemon=True)
                    self._workers.append(worker)
                    worker.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(SERVER_IO_TIMEOUT)
            # The client may hang up first; the probe is under test here, not this server.
            with contextlib.suppress(OSError):
                self.handler(conn, self.stop)

    def close(self) -> None:
        self.stop.set()
        self._wake_write.send(b"x")
        if self._accept_thread is not None:
            self._accept_thread.join(SERVER_IO_TIMEOUT)
        for worker in self._workers:
            worker.join(SERVER_IO_TIMEOUT)
        for sock in (self._listener, self._wake_read, self._wake_write):
            sock.close()


@contextmanager
def serving(handler: Handler, *, start: bool = True) -> Iterator[LocalServer]:
    """A started ``LocalServer`` (or only bound, with ``start=False``), always closed afterwards."""
    server = LocalServer(handler)
    try:
        if start:
            server.start()
        yield server
    finally:
        server.close()


def closed_port() -> int:
    """A port that nothing listens on: bind an ephemeral port, then let it go."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def read_request(conn: socket.socket) -> bytes:
    """Read the probe's request head; reading it all matters, because closing a socket with
    unread data makes the kernel send a reset instead of a clean close."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def http_reply(status: int, reason: str, body: bytes, *, content_type: str = "application/json") -> Handler:
    def handle(conn: socket.socket, stop: threading.Event) -> None:
        read_request(conn)
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        conn.sendall(head.encode("ascii") + body)

    return handle


JUPYTER = http_reply(200, "OK", json.dumps({"version": "2.0.0"}).encode())
NOT_FOUND = http_reply(404, "Not Found", b'{"message": "Not Found"}')
PLAIN_TEXT = http_reply(200, "OK", b"hello, not jupyter\n", content_type="text/plain")


def reset_after_request(conn: socket.socket, stop: threading.Event) -> None:
    read_request(conn)
    # Linger on with a zero timeout turns close() into an RST, like docker-proxy failing to
    # reach the container after accepting.
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def close_without_reply(conn: socket.socket, stop: threading.Event) -> None:
    read_request(conn)


def never_answer(conn: socket.socket, stop: threading.Event) -> None:
    stop.wait(SERVER_IO_TIMEOUT * 6)


def ssh_banner(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"SSH-2.0-OpenSSH\r\n")
    read_request(conn)


def keep_alive_reply(conn: socket.socket, stop: threading.Event) -> None:
    """A complete reply, then the connection stays open: ignores the probe's Connection: close."""
    read_request(conn)
    body = b'{"version": "2.1.0"}'
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    stop.wait(SERVER_IO_TIMEOUT * 6)


def chunked_with_early_hints(conn: socket.socket, stop: threading.Event) -> None:
    read_request(conn)
    conn.sendall(
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'8\r\n{"versio\r\n' + b'c\r\nn": "2.9.9"}\r\n' + b"0\r\n\r\n"
    )
    stop.wait(SERVER_IO_TIMEOUT * 6)


def headers_then_reset(conn: socket.socket, stop: threading.Event) -> None:
    read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial")
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


# ---------------------------------------------------------------------------------------------
# probe_http: one test per situation
