"""The model-scoring API: a small, self-contained HTTP service in the 12-factor style.

It exports HTTP by binding ONE port taken from the environment:
  PORT       the port to listen on (default 8000)
  BIND_HOST  the address to listen on (default 0.0.0.0, every interface; 127.0.0.1 makes the
             service unreachable from outside its container -- the lesson's bug)
  API_VERSION  reported by /health and /score, so a rollout from v1 to v2 can be watched

GET  /health -> {"status": "ok", "version": ...}
POST /score  with {"features": {"tenure_months": 12, "monthly_spend": 80.5, "support_tickets": 3}}
             -> {"score": 0.42, "model_version": ...}
"""

from __future__ import annotations

import json
import math
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# A tiny logistic model: weights per feature. v2 weighs support tickets more heavily, so
# its scores differ visibly from v1's during the rollout lesson.
WEIGHTS = {
    "1.0": {"bias": -1.0, "tenure_months": -0.03, "monthly_spend": 0.01, "support_tickets": 0.35},
    "2.0": {"bias": -1.2, "tenure_months": -0.025, "monthly_spend": 0.012, "support_tickets": 0.5},
}
VERSION = os.environ.get("API_VERSION", "1.0")
MAX_BODY = 64 * 1024


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
        if self.path == "/health":
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
        self._reply(200, {"score": result, "model_version": VERSION})

    def log_message(self, format: str, *args: object) -> None:
        print(f"{self.address_string()} {format % args}", flush=True)


def main() -> None:
    host = os.environ.get("BIND_HOST", "0.0.0.0")
    try:
        port = int(os.environ.get("PORT", "8000"))
    except ValueError:
        sys.exit(f"ERROR: PORT must be a number, got {os.environ['PORT']!r}")
    server = ThreadingHTTPServer((host, port), Handler)
    print(
        f"scoring-api {VERSION} listening on http://{host}:{port} (PORT={port}, BIND_HOST={host})", flush=True
    )
    server.serve_forever()


if __name__ == "__main__":
    main()
