"""A tiny reverse proxy for lesson 05's rollout: weighted backends, one thread, nothing printed.

It owns one port on 127.0.0.1 and forwards each request to a backend picked by smooth weighted
round-robin (nginx's algorithm: with weights 90/10, exactly 10 of every 100 requests go to the
second backend, spread out evenly), with a timeout on every upstream call. A real deployment puts
nginx or a load balancer here -- lesson 07 does, with Compose; this one exists so the lesson can
show the rollout on any engine, Binder's included.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

UPSTREAM_TIMEOUT_S = 5.0


class WeightedRouter:
    """Smooth weighted round-robin over backend URLs: exact shares, evenly interleaved."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.weights: dict[str, int] = {}
        self._current: dict[str, int] = {}

    def set(self, weights: dict[str, int]) -> None:
        with self._lock:
            self.weights = {url: weight for url, weight in weights.items() if weight > 0}
            self._current = dict.fromkeys(self.weights, 0)

    def pick(self) -> str | None:
        with self._lock:
            if not self.weights:
                return None
            for url, weight in self.weights.items():
                self._current[url] += weight
            chosen = max(self._current, key=lambda url: self._current[url])
            self._current[chosen] -= sum(self.weights.values())
            return chosen


class ReverseProxy:
    """The proxy: ``with ReverseProxy(port) as proxy: proxy.route({v1_url: 90, v2_url: 10})``."""

    def __init__(self, port: int = 0, *, host: str = "127.0.0.1") -> None:
        self.router = WeightedRouter()
        router = self.router

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._forward()

            def do_POST(self) -> None:
                self._forward()

            def _forward(self) -> None:
                backend = router.pick()
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if backend is None:
                    status, payload = 503, b'{"error": "no backend is enabled"}'
                else:
                    request = urllib.request.Request(
                        backend + self.path,
                        data=body,
                        method=self.command,
                        headers={"Content-Type": "application/json"},
                    )
                    try:
                        with urllib.request.urlopen(request, timeout=UPSTREAM_TIMEOUT_S) as response:
                            status, payload = response.status, response.read()
                    except urllib.error.HTTPError as error:
                        status, payload = error.code, error.read()
                    except OSError as error:  # refused, reset, timeout: the backend was not reached
                        status = 502
                        payload = json.dumps({"error": f"{backend} unreachable: {error}"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass  # no per-request lines on stderr from the proxy's threads

        self._server = ThreadingHTTPServer((host, port), Handler)
        self.url = f"http://{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="reverse-proxy", daemon=True)
        self._thread.start()

    def route(self, weights: dict[str, int]) -> None:
        """Send each backend URL its share of the requests (weights are relative; 0 stops one)."""
        self.router.set(weights)

    def stop(self) -> bool:
        """Stop serving and free the port; True once the serving thread has ended."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        return not self._thread.is_alive()

    def __enter__(self) -> ReverseProxy:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
