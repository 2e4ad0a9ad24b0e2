"""ex03's readiness poll, tried against a server that starts the way a published container does.

A ``docker run -d`` returns while the app is still starting, and what a client sees on the
published port meanwhile is not just "connection refused": docker-proxy accepts the
connection and hangs up (an empty reply, ``http.client.RemoteDisconnected``, or a reset,
``ConnectionResetError`` -- neither is a ``urllib.error.URLError``), and an app loading its
model answers 503 before 200. ``check_readiness`` runs the learner's
``wait_until_ready(url, timeout)`` against a local server that goes through exactly those
phases, and judges what it claims: True only once 200 was served, False after about the
timeout when 200 never comes, and polling with pauses (a busy loop burns a CPU core the
server may need; its CPU time and request count give it away).

It runs in the kernel itself (no engine, no door): a plain function of the learner's code.
Imports only the standard library at module level: it is loaded inside the grading sandbox.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from portbinding.grading.protocol import CheckResult

# The phases of a start, in seconds since the poll began (STARTS) -- or forever (NEVER).
REFUSING_UNTIL = 0.3
RESETTING_UNTIL = 0.8
LOADING_UNTIL = 1.3
MAX_REQUESTS_PER_S = 60  # a poll that pauses makes a few per second; a busy loop thousands
MAX_CPU_SHARE = 0.5  # of the wall time spent in the learner's function
MAX_LATE_S = 1.0  # after the first 200: a poll backing off to 0.5 s notices within about that
_READY = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{"status":"ok"}'
_LOADING = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 14\r\nRetry-After: 1\r\n\r\nloading model."


@dataclass
class _Server:
    """A local server whose answer depends on how long ago the poll started."""

    never_ready: bool
    started: float = field(default_factory=time.monotonic)
    requests: int = 0
    first_ok: float | None = None  # seconds after start when it first answered 200
    port: int = 0

    def phase(self) -> str:
        elapsed = time.monotonic() - self.started
        if elapsed < REFUSING_UNTIL:
            return "refusing"
        if elapsed < RESETTING_UNTIL or (self.never_ready and int(elapsed * 2) % 2 == 0):
            return "resetting"
        if elapsed < LOADING_UNTIL or self.never_ready:
            return "loading"
        return "ready"

    def serve(self, sock: socket.socket, stop: threading.Event) -> None:
        listening = False
        while not stop.is_set():
            if not listening:
                if self.phase() == "refusing":
                    stop.wait(0.01)
                    continue
                sock.listen(16)  # until now connecting was refused: bound, not listening
                listening = True
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        self.requests += 1
        conn.settimeout(1.0)
        with contextlib.suppress(OSError):
            data = b""
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            phase = self.phase()
            if phase == "resetting":
                if self.requests % 2:  # docker-proxy: an empty reply, or a reset (curl 52 / 56)
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            if phase == "loading":
                conn.sendall(_LOADING)
                return
            if self.first_ok is None:
                self.first_ok = time.monotonic() - self.started
            conn.sendall(_READY)


@contextlib.contextmanager
def _serving(never_ready: bool) -> Iterator[_Server]:
    server = _Server(never_ready)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.05)
    server.port = int(sock.getsockname()[1])
    stop = threading.Event()
    thread = threading.Thread(target=server.serve, args=(sock, stop), daemon=True)
    server.started = time.monotonic()
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        thread.join(timeout=5)
        sock.close()


@dataclass
class _Outcome:
    value: object = None
    error: BaseException | None = None
    seconds: float = 0.0
    cpu: float = 0.0
    finished: bool = False


def _call(poll: Callable[[str, float], object], url: str, timeout: float) -> _Outcome:
    """Run the learner's function in a thread of its own: its CPU time is measured, a hang is bounded."""
    outcome = _Outcome()

    def run() -> None:
        wall, cpu = time.monotonic(), time.thread_time()
        try:
            outcome.value = poll(url, timeout)
        except BaseException as error:  # whatever the learner's code raises is the verdict
            outcome.error = error
        outcome.seconds, outcome.cpu = time.monotonic() - wall, time.thread_time() - cpu
        outcome.finished = True

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout + 10)
    return outcome


def check_readiness(
    wait_until_ready: Callable[[str, float], object], *, never_ready: bool = False, timeout: float = 10.0
) -> CheckResult:
    """Try ``wait_until_ready(url, timeout)`` on a server that is refused, reset, 503, then 200.

    With ``never_ready`` it never answers 200 (the poll must give up after about ``timeout``).
    """
    with _serving(never_ready) as server:
        url = f"http://127.0.0.1:{server.port}/health"
        outcome = _call(wait_until_ready, url, timeout)
        phase = server.phase()
    problem = _problem(outcome, server, timeout=timeout, never_ready=never_ready, phase=phase)
    if problem:
        return CheckResult(False, "wrong_answer", problem, {"requests": server.requests})
    verdict = "gave up" if never_ready else "returned True"
    return CheckResult(
        True,
        "ok",
        f"Passed: through refusals, resets, empty replies and 503s, wait_until_ready {verdict} after "
        f"{outcome.seconds:.1f} s, with {server.requests} requests and {outcome.cpu:.2f} s of CPU.",
        {"requests": server.requests},
    )


def _problem(
    outcome: _Outcome, server: _Server, *, timeout: float, never_ready: bool, phase: str
) -> str | None:
    expected = (
        f"Expected: False after about {timeout:g} s (the server never answered 200)"
        if never_ready
        else "Expected: True once the server answers 200 (about 1.3 s after the start)"
    )
    if not outcome.finished:
        return f"{expected}. Observed: no return after {timeout + 10:g} s. Next step: stop at the timeout."
    if outcome.error is not None:
        name = type(outcome.error).__name__
        return (
            f"{expected}. Observed: it raised {name}: {str(outcome.error)[:200]} (the server was {phase}). "
            "Next step: a refused or reset connection, an empty reply (http.client.RemoteDisconnected) or a "
            "503 all mean 'not ready yet': catch them -- urllib.error.URLError covers refusals and HTTP "
            "errors, OSError covers resets and empty replies -- and try again."
        )
    if never_ready and outcome.value is not False:
        return f"{expected}. Observed: it returned {outcome.value!r:.80} after {outcome.seconds:.1f} s."
    if not never_ready and outcome.value is not True:
        return f"{expected}. Observed: it returned {outcome.value!r:.80} after {outcome.seconds:.1f} s."
    if not never_ready and server.first_ok is None:
        return (
            f"{expected}. Observed: it returned True after {outcome.seconds:.1f} s, but the server had not "
            "answered 200 yet (it was still refusing, resetting or answering 503). Next step: return True "
            "only when the status is 200."
        )
    if not never_ready and server.first_ok is not None:
        late = outcome.seconds - server.first_ok
        if server.requests < 2 or late > MAX_LATE_S:
            return (
                f"Expected: a poll that notices the server soon after it is ready. Observed: it asked "
                f"{server.requests} time(s) and returned {late:.1f} s after the server first answered 200 -- "
                "a guessed sleep, not a poll. Next step: try, and if it is not ready yet, pause a little "
                f"(at most about {MAX_LATE_S / 2:g} s) and try again."
            )
    if never_ready and not 0.8 * timeout <= outcome.seconds < timeout + 2.5:
        return f"{expected}. Observed: it gave up after {outcome.seconds:.1f} s. Next step: poll until then."
    if outcome.cpu > MAX_CPU_SHARE * max(outcome.seconds, 0.2):
        return (
            f"Expected: a poll that pauses between attempts. Observed: it used {outcome.cpu:.1f} s of CPU in "
            f"{outcome.seconds:.1f} s -- a busy loop, which takes a CPU core from the server it waits for. "
            "Next step: time.sleep() between attempts, a little longer each time (0.05 s doubling to 0.5 s)."
        )
    if server.requests > MAX_REQUESTS_PER_S * max(outcome.seconds, 1.0):
        return (
            f"Expected: a poll that pauses between attempts. Observed: {server.requests} requests in "
            f"{outcome.seconds:.1f} s -- a busy loop, which floods the server it waits for. Next step: "
            "time.sleep() between attempts, a little longer each time (0.05 s doubling to 0.5 s)."
        )
    return None
