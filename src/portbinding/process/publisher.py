"""The process engine's docker-proxy: accept on the host port, connect onward to the container.

docker-proxy accepts every connection on the published host port and only then connects to the
container's eth0 address; when nothing listens there it closes the connection it accepted. The
learner's curl then reports "Empty reply from server" (52) or "Connection reset" (56), not
"connection refused" -- the puzzle the course is about. This publisher does the same, so a
server bound to the container's 127.0.0.1 really is unreachable through the published port.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import threading
from collections.abc import Callable

LOGGER = logging.getLogger(__name__)
CONNECT_TIMEOUT = 2.0
_CHUNK = 65536


class PortTaken(OSError):
    """A host port the publisher could not listen on."""

    def __init__(self, address: str, port: int) -> None:
        super().__init__(
            errno.EADDRINUSE,
            f"Error starting userland proxy: listen tcp4 {address}:{port}: bind: address already in use",
        )
        self.port = port


class Publisher:
    """Listens on ``port`` of each host address; forwards each connection to ``target()``.

    ``target`` is asked per connection -- like docker-proxy, which resolves the container's
    address at connect time -- and returns None when nothing in the container listens there.
    """

    def __init__(self, addresses: list[str], port: int, target: Callable[[], tuple[str, int] | None]) -> None:
        self.target = target
        self._listeners: list[socket.socket] = []
        self._closed = threading.Event()
        try:
            for address in addresses:
                listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                self._listeners.append(listener)
                try:
                    listener.bind((address, port))
                except OSError as exc:
                    if exc.errno == errno.EADDRINUSE:
                        raise PortTaken("0.0.0.0" if len(addresses) > 1 else address, port) from exc
                    raise
                port = port or int(listener.getsockname()[1])  # port 0: every address gets the same one
                listener.listen(64)
        except OSError:
            self.close()
            raise
        self.port = port
        for listener in self._listeners:
            threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def close(self) -> None:
        """Stop listening (the port is free again); connections already made run out."""
        self._closed.set()
        for listener in self._listeners:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            listener.close()

    def _accept(self, listener: socket.socket) -> None:
        while not self._closed.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._forward, args=(client,), daemon=True).start()

    def _forward(self, client: socket.socket) -> None:
        target = self.target()
        try:
            if target is None:
                raise ConnectionRefusedError(errno.ECONNREFUSED, "nothing listens on the container's eth0")
            upstream = socket.create_connection(target, timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            LOGGER.debug("publisher could not reach the container: %s", exc)
            client.close()  # what docker-proxy does: the learner sees an empty reply or a reset
            return
        upstream.settimeout(None)
        back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        back.start()
        _pump(client, upstream)
        back.join()  # both directions have ended: the connection is over
        client.close()
        upstream.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy ``source`` to ``sink`` until EOF, then pass the EOF on (half-close)."""
    try:
        while chunk := source.recv(_CHUNK):
            sink.sendall(chunk)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
    except OSError:  # a reset on either side ends both directions
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
