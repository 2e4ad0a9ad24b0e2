"""The model-scoring API: a small, self-contained HTTP service in the 12-factor style.

It exports HTTP by binding ONE port taken from the environment:
  PORT       the port to listen on (default 8000)
  BIND_HOST  the address to listen on (default 0.0.0.0, every interface; 127.0.0.1 makes the
             service unreachable from outside its container -- the lesson's bug)
  API_VERSION  reported by /health and /score, so a rollout from v1 to v2 can be watched
  DATABASE_URL optional, ``redis://HOST:PORT``: a backing service (12-factor: an attached
             resource, found through the environment). Each score is counted there, and
             /health answers 503 while the database cannot be reached -- lesson 07's story,
             "my API can't reach the database at localhost"

GET  /health -> {"status": "ok", "version": ...} (+ "database": "ok" with DATABASE_URL)
POST /score  with {"features": {"tenure_months": 12, "monthly_spend": 80.5, "support_tickets": 3}}
             -> {"score": 0.42, "model_version": ...} (+ "scored": N, counted in the database)
"""

from __future__ import annotations

import json
import math
import os
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# A tiny logistic model: weights per feature. v2 weighs support tickets more heavily, so
# its scores differ visibly from v1's during the rollout lesson.
WEIGHTS = {
    "1.0": {"bias": -1.0, "tenure_months": -0.03, "monthly_spend": 0.01, "support_tickets": 0.35},
    "2.0": {"bias": -1.2, "tenure_months": -0.025, "monthly_spend": 0.012, "support_tickets": 0.5},
}
VERSION = os.environ.get("API_VERSION", "1.0")
MAX_BODY = 64 * 1024
DATABASE_URL = os.environ.get("DATABASE_URL", "")
DATABASE_TIMEOUT_S = 2.0


class DatabaseError(Exception):
    """The database could not be reached or refused the command (the message says which)."""


def database_address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "redis" or not parts.hostname:
        raise ValueError(f"DATABASE_URL must look like redis://HOST:6379, got {url!r}")
    return parts.hostname, parts.port or 6379


def database(*command: str) -> object:
    """One Redis command over its wire protocol (RESP); its reply, or DatabaseError in words."""
    host, port = database_address(DATABASE_URL)
    request = f"*{len(command)}\r\n" + "".join(f"${len(w.encode())}\r\n{w}\r\n" for w in command)
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DatabaseError(f"the name {host!r} does not resolve here ({exc.strerror})") from exc
    errors: list[str] = []
    for family, kind, proto, _, address in addresses:
        sock = socket.socket(family, kind, proto)
        sock.settimeout(DATABASE_TIMEOUT_S)
        try:
            sock.connect(address)
            break
        except OSError as exc:
            sock.close()
            errors.append(exc.strerror or str(exc))
    else:
        # "localhost" is ::1 and 127.0.0.1: a refusal on either says more than a missing ::1.
        why = "Connection refused" if "Connection refused" in errors else errors[-1]
        raise DatabaseError(f"cannot connect to {host}:{port}: {why}")
    try:
        with sock:
            sock.sendall(request.encode())
            reply = sock.makefile("rb").readline().decode("utf-8", "replace").strip()
    except OSError as exc:
        raise DatabaseError(f"{host}:{port} accepted, then failed: {exc.strerror or exc}") from exc
    if not reply or reply[0] == "-":
        raise DatabaseError(f"{host}:{port} answered {reply or 'nothing'!r}")
    return int(reply[1:]) if reply[0] == ":" else reply[1:]


def score(features: dict[str, float]) -> float:
    weights = WEIGHTS.get(VERSION, WEIGHTS["1.0"])
    z = weights["bias"] + sum(weights.get(name, 0.0) * float(value) for name, value in features.items())
    z = max(-60.0, min(60.0, z))  # huge inputs saturate the score instead of overflowing exp()
    return round(1.0 / (1.0 + math.exp(-z)), 4)


class Handler(BaseHTTPRequestHandler):
    server_version = "scoring-api"

    def _reply(self, status: int, payload: dict[str, object]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/health" and DATABASE_URL:
            try:
                database("PING")
            except DatabaseError as exc:
                print(f"health: the database at {DATABASE_URL} cannot be reached: {exc}", flush=True)
                self._reply(503, {"status": "unavailable", "version": VERSION, "database": str(exc)})
                return
            self._reply(200, {"status": "ok", "version": VERSION, "database": "ok"})
        elif self.path == "/health":
            self._reply(200, {"status": "ok", "version": VERSION})
        else:
            self._reply(404, {"error": f"no route {self.path}; try GET /health or POST /score"})

    def do_POST(self) -> None:
        if self.path != "/score":
            self._reply(404, {"error": f"no route {self.path}; try POST /score"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > MAX_BODY:
            self._reply(400, {"error": "send a JSON body of at most 64 KiB"})
            return
        try:
            payload = json.loads(self.rfile.read(length))
            features = payload["features"]
            if not isinstance(features, dict) or not features:
                raise TypeError("features must be a non-empty object")
            result = score({str(k): float(v) for k, v in features.items()})
        except (ValueError, KeyError, TypeError) as exc:
            self._reply(400, {"error": f'expected {{"features": {{name: number}}}}: {exc}'})
            return
        reply: dict[str, object] = {"score": result, "model_version": VERSION}
        if DATABASE_URL:
            try:
                reply["scored"] = database("INCR", f"scored:{VERSION}")
            except DatabaseError as exc:
                print(f"score: the database at {DATABASE_URL} cannot be reached: {exc}", flush=True)
                self._reply(503, {"error": f"the database cannot be reached: {exc}"})
                return
        self._reply(200, reply)

    def log_message(self, format: str, *args: object) -> None:
        print(f"{self.address_string()} {format % args}", flush=True)


def main() -> None:
    host = os.environ.get("BIND_HOST", "0.0.0.0")
    try:
        port = int(os.environ.get("PORT", "8000"))
    except ValueError:
        sys.exit(f"ERROR: PORT must be a number, got {os.environ['PORT']!r}")
    if DATABASE_URL:
        try:
            database_address(DATABASE_URL)
        except ValueError as exc:
            sys.exit(f"ERROR: {exc}")
    server = ThreadingHTTPServer((host, port), Handler)
    print(
        f"scoring-api {VERSION} listening on http://{host}:{port} (PORT={port}, BIND_HOST={host})", flush=True
    )
    if DATABASE_URL:
        print(f"scoring-api {VERSION} counts scores in the database at {DATABASE_URL}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
