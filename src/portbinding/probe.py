"""Probes that answer "can I reach the server in the container from here?".

Each probe makes exactly one attempt and turns whatever happened on the network into an
:data:`Outcome` plus one sentence a learner can read. The outcomes mirror what ``curl``
reports (see :data:`OUTCOME_CLASS`), because that is the tool learners use to check by hand.

Why ``probe_http`` and not a plain TCP connect: ``docker run -p 8888:8888`` starts
docker-proxy on the host, which accepts every connection on the host port and only then tries
to reach the container. When the server inside listens on 127.0.0.1 only, the TCP connect
succeeds and the connection is reset (curl exit 56) or closed empty (curl exit 52) right after.
Only a real HTTP exchange tells "published and answering" from "published but nobody home".

About 580 lines, on purpose: one bounded attempt over a raw socket and the sentence for every
way it can end belong together (each failure is described by the phase it happened in), and the
waits are loops around those attempts. Parsing the reply's bytes is :mod:`httpreply`'s job.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeAlias
from urllib.parse import quote, urlsplit

from portbinding import __version__
from portbinding.httpreply import NotHttp, Reply, body_complete, parse_reply
from portbinding.ports import bracket_host

LOGGER = logging.getLogger(__name__)

Outcome: TypeAlias = Literal[
    "ok", "refused", "reset", "empty_reply", "timeout", "unexpected_response", "unresolved"
]

OUTCOME_CLASS: dict[Outcome, str] = {
    "ok": "ok",
    "refused": "refused",
    # curl reports these as 56 (reset) or 52 (empty reply) depending on a race inside
    # docker-proxy; for a learner both mean "accepted on the host, nothing behind it".
    "reset": "reset_or_empty",
    "empty_reply": "reset_or_empty",
    "timeout": "timeout",
    "unresolved": "unresolved",
    "unexpected_response": "unexpected_response",
}
"""Each outcome's curl-style class: outcomes in one class are the same situation for a learner."""

DEFAULT_EXPECT_STATUS: Container[int] = range(200, 400)
"""Statuses ``probe_http`` counts as ok unless told otherwise: success and redirects."""

MAX_REPLY_BYTES = 64 * 1024
"""The most ``probe_http`` reads of a reply; enough for any status page, bounded for safety."""

BODY_EXCERPT_CHARS = 200

# Which of these it is (a loopback-only server, a wrong container port, an app still starting)
# only evidence from inside can tell: `portbinding diagnose` reads it.
_NOTHING_BEHIND_WHY = (
    "something accepted on the host port (an engine's port proxy does) but nothing answered behind "
    "it -- nothing reachable listens on that container port, for whatever reason"
)
_NOTHING_BEHIND = "the connection to {where} was accepted and then {how} at once: " + _NOTHING_BEHIND_WHY

_Phase: TypeAlias = Literal["resolve", "connect", "exchange"]
_ResultCore: TypeAlias = tuple[Outcome, str, int | None, str]


@dataclass(frozen=True)
class ProbeResult:
    """What one probe saw.

    ``outcome`` is the machine-readable verdict, ``detail`` one sentence for the learner.
    ``http_status`` and ``body_excerpt`` are set whenever an HTTP reply came back.
    """

    outcome: Outcome
    detail: str
    elapsed_ms: float
    http_status: int | None = None
    body_excerpt: str = ""
    target: str = ""

    @property
    def ok(self) -> bool:
        """True when the probe got what it wanted (a connection, or an expected HTTP status)."""
        return self.outcome == "ok"

    @property
    def reachable(self) -> bool:
        """True when an HTTP reply of any status came back: the port binding itself works."""
        return self.http_status is not None

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict with stable keys, for the CLI's ``--json`` output and the grader."""
        return {
            "outcome": self.outcome,
            "detail": self.detail,
            "elapsed_ms": round(self.elapsed_ms, 3),
            "http_status": self.http_status,
            "body_excerpt": self.body_excerpt,
            "target": self.target,
        }


# ---------------------------------------------------------------------------------------------
# Public probes


def probe_http(url: str, *, timeout: float = 2.0, expect_status: Container[int] | None = None) -> ProbeResult:
    """Send one ``GET`` to ``url`` and classify what happened.

    ``timeout`` bounds the whole exchange (name lookup, connect, request, reply). A status in
    ``expect_status`` (default: 200-399) is ``ok``; any other status is ``unexpected_response``
    with ``http_status`` set. Network failures never raise; they become outcomes.

    Raises:
        ValueError: ``url`` is not a well-formed ``http://`` URL (including a host name that
            cannot be encoded), or ``timeout`` is not positive. These are programming errors,
            not network conditions.
    """
    host, port, host_header, request_target = _parse_http_url(url)
    _check_timeout(timeout)
    expected = DEFAULT_EXPECT_STATUS if expect_status is None else expect_status
    request = (
        f"GET {request_target} HTTP/1.1\r\n"
        f"Host: {host_header}\r\n"
        f"User-Agent: portbinding-probe/{__version__}\r\n"
        "Accept: */*\r\n"
        "Connection: close\r\n"
        "\r\n"
    ).encode("ascii")

    started = time.monotonic()
    deadline = started + timeout
    phase: _Phase = "resolve"
    buffer = bytearray()
    try:
        addresses = _resolve(host, port, deadline)
        phase = "connect"
        with _connect(addresses, deadline) as sock:
            phase = "exchange"
            _settimeout_or_raise(sock, deadline)
            sock.sendall(request)
            core = _read_reply(sock, deadline, buffer, expected)
    except OSError as exc:
        # Once the headers are in, the application has answered; how the connection ended
        # afterwards (reset, stalled body) does not change what the learner needs to know.
        reply = parse_reply(bytes(buffer))
        if isinstance(reply, Reply):
            core = _classify_reply(reply, expected, cut_short=True)
        else:
            core = _classify_error(
                exc, phase=phase, where=_where(host, port), host=host, timeout=timeout, received=len(buffer)
            )
    return _finish(core, started=started, target=url)


def probe_tcp(host: str, port: int, *, timeout: float = 2.0, hold: float = 0.0) -> ProbeResult:
    """Try one TCP connect to ``host:port``; ``ok`` if the connection was accepted.

    Warning: through docker-proxy (``docker run -p``) this connect succeeds even when nothing
    answers behind it, e.g. when the server in the container listens on 127.0.0.1 only. A
    successful ``probe_tcp`` is therefore NOT proof that the application is reachable; use
    :func:`probe_http` for the real test. ``probe_tcp`` is useful for non-HTTP services and
    for showing learners exactly this false positive.

    ``hold`` > 0 removes that false positive for services that are not HTTP: after connecting,
    the probe sends nothing and waits up to ``hold`` seconds. A proxy with nothing behind it
    hangs up at once (``empty_reply`` or ``reset``); a real service either speaks first (a
    banner: ``ok``, its first bytes in ``body_excerpt``) or keeps the connection open (``ok``).

    Raises:
        ValueError: ``host`` is empty, ``port`` is outside 0-65535, or ``timeout`` is not positive.
    """
    if not host:
        raise ValueError("probe_tcp needs a host name or address, got an empty string")
    if not 0 <= port <= 65535:
        raise ValueError(f"TCP ports are 0-65535, got {port}")
    _check_timeout(timeout)
    where = _where(host, port)

    started = time.monotonic()
    deadline = started + timeout
    phase: _Phase = "resolve"
    try:
        addresses = _resolve(host, port, deadline)
        phase = "connect"
        with _connect(addresses, deadline) as sock:
            phase = "exchange"
            core: _ResultCore = (
                _held(sock, where, min(hold, deadline - time.monotonic()))
                if hold > 0
                else (
                    "ok",
                    f"a TCP connection to {where} was accepted; on its own this does not prove an "
                    "application answers, because docker-proxy accepts connections on a published "
                    "port even when nothing listens behind it",
                    None,
                    "",
                )
            )
    except OSError as exc:
        core = _classify_error(exc, phase=phase, where=where, host=host, timeout=timeout, received=0)
    return _finish(core, started=started, target=where)


def _held(sock: socket.socket, where: str, hold: float) -> _ResultCore:
    """Wait ``hold`` seconds on a fresh connection: a hang-up means nothing was behind it."""
    sock.settimeout(max(hold, 0.01))
    try:
        data = sock.recv(256)
    except TimeoutError:
        return "ok", f"a TCP connection to {where} was accepted and stayed open: a service holds it", None, ""
    if not data:
        return "empty_reply", _NOTHING_BEHIND.format(where=where, how="closed"), None, ""
    excerpt = _excerpt(data)
    return (
        "ok",
        f"a TCP connection to {where} was accepted and the service spoke first: {excerpt[:60]!r}",
        None,
        excerpt,
    )


def is_jupyter(result: ProbeResult) -> bool:
    """True when ``result`` is an HTTP 200 whose body is JSON with a ``"version"`` key.

    That is what a Jupyter server answers to ``GET /api`` (no token needed). Only
    ``body_excerpt`` is inspected, which is plenty for Jupyter's ``{"version": "2.x.y"}``.
    """
    if result.http_status != 200:
        return False
    try:
        document = json.loads(result.body_excerpt)
    except ValueError:
        return False
    return isinstance(document, dict) and "version" in document


def wait_for(
    check: Callable[[], ProbeResult],
    *,
    timeout: float,
    alive: Callable[[], bool] | None = None,
    first_interval: float = 0.005,
    max_interval: float = 0.25,
) -> ProbeResult:
    """Run ``check`` until it is ok, ``timeout`` seconds pass, or ``alive()`` turns False.

    Retries back off from ``first_interval``, doubling up to ``max_interval``, so a server that
    comes up quickly is seen quickly without hammering one that is slow. ``alive`` (e.g. "is
    the container still running?") is asked after every failed check; once it says False the
    last result is returned at once, because waiting for a dead container is pointless.
    Pauses never extend past the deadline (a single ``check`` may, by up to its own timeout).

    Returns the last result of ``check``: ok, or the failure the learner should see.
    """
    results: list[ProbeResult] = []

    def attempt() -> bool:
        results.append(check())
        return results[-1].ok

    wait_until(
        attempt, timeout=timeout, alive=alive, first_interval=first_interval, max_interval=max_interval
    )
    return results[-1]


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout: float,
    alive: Callable[[], bool] | None = None,
    first_interval: float = 0.005,
    max_interval: float = 0.25,
) -> bool:
    """Poll ``condition`` with the same adaptive back-off as :func:`wait_for`; True once it holds.

    The caller writes ``assert wait_until(...), "what did not happen"``. ``condition`` is
    always asked at least once.
    """
    if timeout < 0:
        raise ValueError(f"timeout must not be negative, got {timeout}")
    if first_interval <= 0 or max_interval < first_interval:
        raise ValueError("need 0 < first_interval <= max_interval")
    deadline = time.monotonic() + timeout
    interval = first_interval
    attempts = 1
    while not condition():
        if alive is not None and not alive():
            LOGGER.debug("wait_until: gave up after %d attempts, alive() is False", attempts)
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            LOGGER.debug("wait_until: deadline passed after %d attempts", attempts)
            return False
        _pause(min(interval, remaining))
        interval = min(interval * 2, max_interval)
        attempts += 1
    LOGGER.debug("wait_until: held after %d attempts", attempts)
    return True


# ---------------------------------------------------------------------------------------------
# Plumbing


def _where(host: str, port: int) -> str:
    """``host:port`` as a learner would type it, with IPv6 addresses in brackets."""
    return f"{bracket_host(host)}:{port}"


def _pause(seconds: float) -> None:
    # Back-off between two polling attempts, not synchronisation: nothing signals us when a
    # server comes up, so asking again later is the only way to find out.
    time.sleep(seconds)


def _check_timeout(timeout: float) -> None:
    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout}")


def _parse_http_url(url: str) -> tuple[str, int, str, str]:
    """Split ``url`` into (host, port, Host header value, request target) or raise ValueError."""
    parts = urlsplit(url)  # raises ValueError itself for e.g. an unclosed "[" in the host
    if parts.scheme.lower() != "http":
        raise ValueError(f"The probe speaks plain HTTP: give a URL like http://localhost:8888/, got {url!r}")
    host = parts.hostname
    if not host:
        raise ValueError(f"no host in URL {url!r}")
    port = parts.port  # raises ValueError for a non-numeric or out-of-range port
    authority = parts.netloc.rpartition("@")[2]
    host_header = authority if authority.isascii() else authority.encode("idna").decode("ascii")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    # Keep characters that are legal in a request target as they are and %-encode the rest,
    # so the request line is always plain ASCII without spaces.
    target = quote(target, safe="!$&'()*+,;=:@/?%~-._")
    return host, 80 if port is None else port, host_header, target


AddressInfo: TypeAlias = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[object, ...]]


def _resolve(host: str, port: int, deadline: float) -> Sequence[AddressInfo]:
    """getaddrinfo bounded by ``deadline`` (getaddrinfo itself has no timeout)."""
    try:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except socket.gaierror:
        pass  # not an IP literal: needs a real lookup, which can hang on a broken resolver
    outcome: list[Sequence[AddressInfo] | BaseException] = []
    done = threading.Event()

    def lookup() -> None:
        try:
            outcome.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except BaseException as exc:  # handed to the caller's thread below
            outcome.append(exc)
        finally:
            done.set()

    # A daemon thread, so a lookup that never returns cannot keep the interpreter alive.
    threading.Thread(target=lookup, name=f"probe-resolve-{host}", daemon=True).start()
    if not done.wait(max(0.0, deadline - time.monotonic())):
        raise TimeoutError(f"name lookup for {host!r} did not finish in time")
    found = outcome[0]
    if isinstance(found, BaseException):
        raise found
    return found


def _connect(addresses: Sequence[AddressInfo], deadline: float) -> socket.socket:
    """Connect to the first address that accepts, like socket.create_connection, within ``deadline``."""
    last_error: OSError = ConnectionRefusedError(errno.ECONNREFUSED, "no address to connect to")
    for family, kind, proto, _, sockaddr in addresses:
        sock = socket.socket(family, kind, proto)
        try:
            _settimeout_or_raise(sock, deadline)
            sock.connect(sockaddr)
        except TimeoutError:
            sock.close()
            raise  # the whole budget is spent; trying another address would overrun it
        except OSError as exc:
            sock.close()
            last_error = exc
            continue
        return sock
    raise last_error


def _settimeout_or_raise(sock: socket.socket, deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("deadline passed")
    sock.settimeout(remaining)


def _read_reply(
    sock: socket.socket, deadline: float, buffer: bytearray, expected: Container[int]
) -> _ResultCore:
    """Read until the reply is complete, the peer closes, or the cap; classify what arrived."""
    reply: Reply | NotHttp | None = None
    closed = False
    while len(buffer) < MAX_REPLY_BYTES:
        _settimeout_or_raise(sock, deadline)
        chunk = sock.recv(MAX_REPLY_BYTES - len(buffer))
        if not chunk:
            closed = True
            break
        buffer += chunk
        reply = parse_reply(bytes(buffer))
        # Stop as soon as the answer is known: a server that ignores "Connection: close"
        # must not turn a perfectly good reply into a timeout.
        if isinstance(reply, NotHttp) or (isinstance(reply, Reply) and body_complete(bytes(buffer))):
            break
    if not buffer:
        return (
            "empty_reply",
            "the connection was accepted and then closed without a single byte of reply: "
            + _NOTHING_BEHIND_WHY,
            None,
            "",
        )
    reply = parse_reply(bytes(buffer))
    if isinstance(reply, Reply):
        return _classify_reply(reply, expected, cut_short=False)
    excerpt = _excerpt(bytes(buffer))
    if isinstance(reply, NotHttp):
        return (
            "unexpected_response",
            f"something answered, but not in HTTP (it began with {excerpt[:60]!r}): a different kind "
            "of service is listening on this port",
            None,
            excerpt,
        )
    why = "the connection closed" if closed else f"the reply passed {MAX_REPLY_BYTES // 1024} KiB"
    return (
        "unexpected_response",
        f"the reply began like HTTP but {why} before its headers ended: the server is misbehaving",
        None,
        excerpt,
    )


def _excerpt(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")[:BODY_EXCERPT_CHARS]


def _describe_expected(expected: Container[int]) -> str:
    if isinstance(expected, range) and expected.step == 1 and len(expected) > 0:
        return f"{expected.start}-{expected.stop - 1}"
    if isinstance(expected, (set, frozenset, list, tuple)):
        return ", ".join(str(status) for status in sorted(expected))
    return "the statuses the check asked for"


def _classify_reply(reply: Reply, expected: Container[int], *, cut_short: bool) -> _ResultCore:
    status_text = f"{reply.status} {reply.reason}".strip()
    tail = " (the rest of the reply was cut short)" if cut_short else ""
    excerpt = _excerpt(reply.body)
    if reply.status in expected:
        return (
            "ok",
            f"an HTTP server answered with status {status_text}: the port is published and the "
            f"application is reachable{tail}",
            reply.status,
            excerpt,
        )
    return (
        "unexpected_response",
        f"an HTTP server answered with status {status_text}, not one of {_describe_expected(expected)}: "
        f"the port binding works, but the application did not serve what was asked for{tail}",
        reply.status,
        excerpt,
    )


def _errno_name(exc: OSError) -> str:
    if exc.errno is None:
        return type(exc).__name__
    return f"{errno.errorcode.get(exc.errno, str(exc.errno))}, {os.strerror(exc.errno)}"


def _classify_error(
    exc: OSError, *, phase: _Phase, where: str, host: str, timeout: float, received: int
) -> _ResultCore:
    if isinstance(exc, socket.gaierror):
        return (
            "unresolved",
            f"the name {host!r} could not be turned into an address ({exc.strerror}): check the host "
            "name for typos",
            None,
            "",
        )
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError, and so is ETIMEDOUT
        if phase == "resolve":
            sentence = f"looking up the name {host!r} did not finish within {timeout:g} s"
        elif phase == "connect":
            sentence = (
                f"nothing answered the connection attempt to {where} within {timeout:g} s: the packets "
                "are being dropped on the way (a firewall, or an address no machine answers for)"
            )
        else:
            got = f"only {received} bytes of a reply" if received else "no reply"
            sentence = (
                f"the connection to {where} was accepted but {got} arrived within {timeout:g} s: the "
                "server is busy, stuck, or not speaking HTTP"
            )
        return "timeout", sentence, None, ""
    if isinstance(exc, ConnectionRefusedError):
        return (
            "refused",
            f"the connection to {where} was refused: nothing is listening there (the container is not "
            "running, the port is not published with -p, or this is the wrong host port)",
            None,
            "",
        )
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        before = f"after only {received} bytes of a reply" if received else "before any reply"
        return (
            "reset",
            f"the connection to {where} was accepted and then reset {before}: " + _NOTHING_BEHIND_WHY,
            None,
            "",
        )
    if phase in ("resolve", "connect"):
        # EHOSTUNREACH, ENETUNREACH and friends: curl reports them as exit 7 ("couldn't
        # connect") like a refusal, and for a learner the fix is the same: wrong address.
        return (
            "refused",
            f"the connection to {where} could not be made ({_errno_name(exc)}): there is no way to "
            "that address from here, so check the host name or IP",
            None,
            "",
        )
    # Any other error mid-exchange means the connection broke before a reply: a reset in effect.
    return (
        "reset",
        f"the connection to {where} was accepted and then broke before any reply ({_errno_name(exc)})",
        None,
        "",
    )


def _finish(core: _ResultCore, *, started: float, target: str) -> ProbeResult:
    outcome, detail, status, excerpt = core
    result = ProbeResult(
        outcome=outcome,
        detail=detail,
        elapsed_ms=(time.monotonic() - started) * 1000.0,
        http_status=status,
        body_excerpt=excerpt,
        target=target,
    )
    LOGGER.debug("probe %s -> %s in %.1f ms", target, outcome, result.elapsed_ms)
    return result


# ---------------------------------------------------------------------------------------------
# Readiness of a container


class _Engine(Protocol):
    """What wait_until_ready needs of portbinding.engine.Engine (kept structural: no import cycle)."""

    def url(self, container: Any, container_port: int, path: str = "/") -> str | None: ...

    def is_running(self, container: Any) -> bool: ...


def wait_until_ready(
    engine: _Engine,
    container: Any,
    port: int,
    *,
    path: str = "/",
    timeout: float = 30.0,
    max_interval: float = 0.05,
    alive_every: float = 0.5,
) -> ProbeResult:
    """Poll the published ``port`` of ``container`` over HTTP until it answers.

    The first checks come within milliseconds, then back off to ``max_interval`` (so the lag
    between "it listens" and "we noticed" stays small). Returns at once when the container
    exits -- asked at most every ``alive_every`` seconds, since each ask is an engine call.
    """
    running = engine.is_running(container)
    url = engine.url(container, port, path) if running else None
    if url is None:
        why = (
            f"container port {port} is not published, so nothing on the host leads to it"
            if running
            else "the container is not running: it exited (its logs say why) and took its ports with it"
        )
        return ProbeResult("refused", why, 0.0, target=f"container port {port}")
    checked_at = 0.0
    last_alive = True

    def alive() -> bool:
        nonlocal checked_at, last_alive
        now = time.monotonic()
        if now - checked_at >= alive_every:
            checked_at, last_alive = now, engine.is_running(container)
        return last_alive

    return wait_for(
        lambda: probe_http(url, timeout=min(2.0, max(timeout, 0.1))),
        timeout=timeout,
        alive=alive,
        max_interval=max_interval,
    )
