"""The part of the Docker Engine API the course uses, answered for the process engine's daemon.

One :class:`Handler` per connection routes by method and path and answers JSON, plain text or
Docker's raw stream (logs, exec), as dockerd would for the same requests from docker-py.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import signal
import socket
import sys
import termios
import uuid
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlparse

from portbinding.images import tagged
from portbinding.probe import wait_until
from portbinding.process.container import ApiError, ProcessContainer, image_id
from portbinding.process.launch import COMPONENT
from portbinding.process.output import frame, tail_lines
from portbinding.process.recipes import Recipe, RecipeError

if TYPE_CHECKING:  # only for annotations: the daemon imports this module to serve it
    from portbinding.process.daemon import Daemon, Server

LOGGER = logging.getLogger(__name__)
API_VERSION = "1.41"
_VERSIONED = re.compile(r"^/v\d+\.\d+")


class Handler(BaseHTTPRequestHandler):
    """One API connection. Routes by method and path, answers JSON or a raw stream."""

    protocol_version = "HTTP/1.1"
    server: Server  # the daemon's socketserver, which carries the Daemon

    def log_message(self, format: str, *args: Any) -> None:
        LOGGER.debug("api: " + format, *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def _dispatch(self, method: str) -> None:
        url = urlparse(self.path)
        path = _VERSIONED.sub("", unquote(url.path))
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            self._body = raw
            is_json = "json" in (self.headers.get("Content-Type") or "application/json")
            body = json.loads(raw) if raw.strip() and is_json else {}  # a build's body is a tar
            self._route(method, path, query, body)
        except ApiError as exc:
            self._json(exc.status, {"message": exc.message})
        except (ValueError, KeyError) as exc:
            self._json(400, {"message": f"bad request: {exc}"})
        except Exception as exc:  # a bug here must reach the client as an answer, not a hang-up
            LOGGER.exception("%s %s failed", method, path)
            self._json(500, {"message": f"the process engine failed: {type(exc).__name__}: {exc}"})

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> None:
        daemon = self.server.daemon
        parts = [p for p in path.split("/") if p]
        if path == "/_ping":
            return self._text(200, "OK")
        if path == "/version":
            return self._json(200, _version())
        if path == "/info":
            return self._json(
                200,
                {
                    "Name": "process-engine",
                    "OperatingSystem": "processes",
                    "Containers": len(daemon.containers),
                },
            )
        if parts == ["build"] and method == "POST":
            return self._build(query)
        if parts[:1] == ["images"]:
            return self._images(method, parts, query)
        if parts == ["containers", "json"]:
            return self._json(200, [c.summary() for c in _filtered(daemon, query)])
        if parts == ["containers", "create"] and method == "POST":
            created = daemon.create(query.get("name"), body)
            return self._json(201, {"Id": created.id, "Warnings": []})
        if parts[:1] == ["containers"] and len(parts) >= 2:
            return self._container(method, daemon.container(parts[1]), parts[2:], query, body)
        if parts[:1] == ["exec"] and len(parts) == 3:
            return self._exec(parts[1], parts[2], body)
        raise ApiError(404, f"page not found: the process engine does not offer {method} {path}")

    def _images(self, method: str, parts: list[str], query: dict[str, str]) -> None:
        daemon = self.server.daemon
        if parts == ["images", "json"]:
            wanted = json.loads(query.get("filters") or "{}").get("label") or []
            unique = {image_id(r): r for r in daemon.catalogue.values()}
            listed = [_image_summary(r) for r in unique.values() if _labels_match(r.labels, wanted)]
            return self._json(200, listed)
        if len(parts) >= 3 and parts[-1] == "json" and method == "GET":
            return self._json(200, _image_inspect(daemon.recipe("/".join(parts[1:-1]))))
        if method == "DELETE" and len(parts) >= 2:
            return self._json(200, daemon.remove_image("/".join(parts[1:])))
        if parts[1:2] == ["create"]:
            raise ApiError(501, "the process engine cannot pull images: it runs the course's own")
        raise ApiError(404, "page not found")

    def _build(self, query: dict[str, str]) -> None:
        """POST /build: follow the Dockerfile of the context (a tar) into a new recipe."""
        daemon = self.server.daemon
        tags = tuple(tagged(t) for t in [query.get("t", "")] if t) or (
            f"process-build:{uuid.uuid4().hex[:8]}",
        )
        events: list[dict[str, Any]] = []
        try:
            recipe = daemon.build(
                self._body,
                tags,
                dockerfile=query.get("dockerfile") or "Dockerfile",
                build_args=json.loads(query.get("buildargs") or "{}"),
                labels=json.loads(query.get("labels") or "{}"),
                gzip="gzip" in (self.headers.get("Content-Encoding") or ""),
            )
        except RecipeError as exc:
            events.append({"errorDetail": {"message": str(exc)}, "error": str(exc)})
        else:
            events += [
                {"stream": f"Step {n}/{len(recipe.copies) or 1} : followed by the process engine\n"}
                for n in (1,)
            ]
            events.append({"stream": f"Successfully built {recipe.ident.removeprefix('sha256:')[:12]}\n"})
            events += [{"stream": f"Successfully tagged {tag}\n"} for tag in recipe.tags]
        self._raw(200, b"".join(json.dumps(e).encode() + b"\r\n" for e in events), "application/json")

    def _container(
        self, method: str, container: ProcessContainer, action: list[str], query: dict[str, str], body: Any
    ) -> None:
        daemon = self.server.daemon
        if method == "GET" and action == ["json"]:
            return self._json(200, container.inspect())
        if method == "DELETE" and not action:
            daemon.remove(container, force=query.get("force", "").lower() in ("1", "true"))
            return self._empty(204)
        if method == "POST" and action == ["start"]:
            if container.status == "running":
                return self._empty(304)
            daemon.start(container)
            return self._empty(204)
        if method == "POST" and action in (["stop"], ["kill"], ["restart"]):
            if action == ["kill"]:
                sig = getattr(
                    signal, "SIG" + query.get("signal", "KILL").upper().removeprefix("SIG"), signal.SIGKILL
                )
                daemon.stop(container, 10, sig)
            else:
                daemon.stop(container, float(query.get("t") or 10))
            if action == ["restart"]:
                daemon.start(container)
            return self._empty(204)
        if method == "POST" and action == ["wait"]:
            daemon.wait_exited(container, 3600)
            return self._json(200, {"StatusCode": container.exit_code, "Error": None})
        if method == "GET" and action == ["logs"]:
            return self._logs(container, query)
        if method == "POST" and action == ["exec"]:
            if container.status != "running":
                raise ApiError(409, f"Container {container.id} is not running")
            ident = uuid.uuid4().hex
            with daemon.lock:
                daemon.execs[ident] = {
                    "container": container.id,
                    "argv": [str(a) for a in body.get("Cmd") or []],
                    "ExitCode": None,
                    "Running": False,
                }
            return self._json(201, {"Id": ident})
        raise ApiError(404, f"page not found: the process engine does not offer {method} {'/'.join(action)}")

    def _logs(self, container: ProcessContainer, query: dict[str, str]) -> None:
        streams = {
            n for n, key in ((1, "stdout"), (2, "stderr")) if query.get(key, "0").lower() in ("1", "true")
        }
        tail = query.get("tail", "all")
        with container.output.changed:
            frames = [f for f in container.output.frames if f[0] in streams]
            start = len(container.output.frames)
        if tail.isdigit():
            frames = tail_lines(frames, int(tail))
        if query.get("follow", "0").lower() not in ("1", "true"):
            return self._raw(200, b"".join(frame(n, data) for n, data in frames))
        self._stream_head()
        self._send(b"".join(frame(n, data) for n, data in frames))
        for number, data in container.output.follow(start):
            if number in streams and not self._send(frame(number, data)):
                return  # the reader stopped following: so do we

    def _exec(self, ident: str, action: str, body: Any) -> None:
        daemon = self.server.daemon
        with daemon.lock:
            record = daemon.execs.get(ident)
        if record is None:
            raise ApiError(404, f"No such exec instance: {ident}")
        if action == "json":
            return self._json(
                200, {"ID": ident, "Running": record["Running"], "ExitCode": record["ExitCode"]}
            )
        if action != "start":
            raise ApiError(404, "page not found")
        container = daemon.container(record["container"])
        self._stream_head()
        record["Running"] = True
        code, output = daemon.exec_run(container, record["argv"])
        record.update(Running=False, ExitCode=code)
        if output:
            self._send(frame(1, output))

    # -------------------------------------------------------------------- answers

    def _json(self, status: int, payload: Any) -> None:
        self._raw(status, json.dumps(payload).encode(), "application/json")

    def _text(self, status: int, text: str) -> None:
        self._raw(status, text.encode(), "text/plain")

    def _empty(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _raw(self, status: int, data: bytes, kind: str = "application/vnd.docker.raw-stream") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream_head(self) -> None:
        """Headers of a raw stream that ends when the connection closes.

        docker-py reads such a stream from the socket under its HTTP reader; bytes that arrive
        together with the headers would be buffered by that reader and lost. So the stream
        waits until the client has taken the headers off the socket (SIOCOUTQ: bytes the peer
        has not read yet) before the first frame.
        """
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.docker.raw-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()
        # Polling a condition (the peer's read), with a deadline.
        wait_until(lambda: not _unread(self.connection), timeout=5, first_interval=0.0005, max_interval=0.002)

    def _send(self, data: bytes) -> bool:
        """Write ``data`` to the client; False once the client has gone."""
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True


def _unread(connection: socket.socket) -> int:
    buffer = bytearray(4)
    try:
        fcntl.ioctl(connection.fileno(), termios.TIOCOUTQ, buffer)
    except OSError:
        return 0
    return int.from_bytes(buffer, sys.byteorder)


def _labels_match(labels: dict[str, str], wanted: list[str]) -> bool:
    for item in wanted:
        key, _, value = item.partition("=")
        if key not in labels or ("=" in item and labels[key] != value):
            return False
    return True


def _filtered(daemon: Daemon, query: dict[str, str]) -> list[ProcessContainer]:
    filters = json.loads(query.get("filters") or "{}")
    wanted = filters.get("label") or []
    if isinstance(wanted, dict):  # the older {"label": {"k=v": true}} form
        wanted = list(wanted)
    show_all = query.get("all", "0").lower() in ("1", "true")
    with daemon.lock:
        return [
            c
            for c in daemon.containers.values()
            if (show_all or c.status == "running")
            and _labels_match(c.labels, wanted)
            and (not filters.get("name") or any(n in c.name for n in filters["name"]))
        ]


def _image_inspect(recipe: Recipe) -> dict[str, Any]:
    return {
        "Id": image_id(recipe),
        "RepoTags": list(recipe.tags),
        "Created": "1970-01-01T00:00:00Z",
        "Size": 0,
        "Config": {
            "Cmd": list(recipe.cmd),
            "Entrypoint": list(recipe.entrypoint) or None,
            "Env": [f"{k}={v}" for k, v in recipe.env.items()],
            "ExposedPorts": {f"{p}/tcp": {} for p in recipe.exposed},
            "Labels": recipe.labels,
            "WorkingDir": recipe.workdir,
        },
    }


def _image_summary(recipe: Recipe) -> dict[str, Any]:
    return {
        "Id": image_id(recipe),
        "RepoTags": list(recipe.tags),
        "Labels": recipe.labels,
        "Size": 0,
        "Created": 0,
    }


def _version() -> dict[str, Any]:
    from portbinding import __version__

    return {
        "Version": __version__,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": "1.24",
        "Os": "linux",
        "Arch": os.uname().machine,
        "Components": [{"Name": COMPONENT, "Version": __version__}],
    }
