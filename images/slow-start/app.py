"""A server that needs a few seconds before it listens, like an API loading a large model.

STARTUP_DELAY (seconds, default 5) passes before the socket opens; until then the published
port has nothing behind it. Readiness means "answers /health", not "the container is running".
"""

from __future__ import annotations

import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"status": "ready"}).encode()
        self.send_response(200 if self.path in ("/", "/health") else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main() -> None:
    delay = float(os.environ.get("STARTUP_DELAY", "5"))
    port = int(os.environ.get("PORT", "8000"))
    print(f"loading the model: the socket opens in {delay:g} s", flush=True)
    # The delay is the point of this image: it simulates work done before listen().
    time.sleep(delay)
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    print(f"ready: listening on http://0.0.0.0:{port}", flush=True)
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
