"""Hold a port inside the container with a placeholder web service (the HOLD_PORT scenario).

The socket is bound before this process forks into the background and returns, so when the
entrypoint goes on to start Jupyter the port is certainly taken.
"""

import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Placeholder(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"placeholder service: not Jupyter\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


server = HTTPServer(("0.0.0.0", int(sys.argv[1])), Placeholder)
print(f"placeholder service holding port {sys.argv[1]}", flush=True)
if os.fork() == 0:
    os.setsid()
    server.serve_forever()
