"""An API that crashes before it opens its socket: a required setting is missing.

The container starts, prints a readable error, and exits with status 3 -- so `-p 8000:8000`
has nothing to forward to and the port mapping disappears with the container. The fix is in
the logs: run with `-e MODEL_PATH=/app/model.json`.
"""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar


def load_model() -> dict[str, object]:
    path = os.environ.get("MODEL_PATH")
    if not path:
        print(
            "ERROR: MODEL_PATH is not set. This service needs a model file before it can listen.",
            file=sys.stderr,
            flush=True,
        )
        print("Hint: run the container with -e MODEL_PATH=/app/model.json", file=sys.stderr, flush=True)
        sys.exit(3)
    try:
        with open(path, encoding="utf-8") as handle:
            model: dict[str, object] = json.load(handle)
            return model
    except (OSError, ValueError) as exc:
        print(f"ERROR: cannot load the model from MODEL_PATH={path}: {exc}", file=sys.stderr, flush=True)
        sys.exit(3)


class Handler(BaseHTTPRequestHandler):
    model: ClassVar[dict[str, object]] = {}

    def do_GET(self) -> None:
        body = json.dumps({"status": "ok", "model": self.model.get("name")}).encode()
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main() -> None:
    Handler.model = load_model()  # exits here, before any socket is opened, when unset
    port = int(os.environ.get("PORT", "8000"))
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    print(f"model {Handler.model.get('name')} loaded; listening on http://0.0.0.0:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
