"""The process engine's daemon: the part of the Docker Engine API the course uses, on a Unix socket.

Containers are process groups started from a course image's recipe (see the package docstring).
Like dockerd without live-restore, the daemon's containers end when it ends.

Run ``python -m portbinding.process.daemon --socket PATH`` (``launch.ensure_running`` does).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import io
import json
import logging
import os
import re
import shutil
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import tarfile
import termios
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from portbinding.dockerjson import PortMap
from portbinding.images import tagged
from portbinding.ports import PortMapping, from_bindings
from portbinding.process.launch import COMPONENT
from portbinding.process.netview import MAX_CONTAINERS, ContainerNet, host_addresses
from portbinding.process.publisher import PortTaken, Publisher
from portbinding.process.recipes import Recipe, RecipeError, find, from_dockerfile, recipes

LOGGER = logging.getLogger(__name__)
API_VERSION = "1.41"
SHIM_DIR = Path(__file__).resolve().parent / "shim"
EXEC_TIMEOUT = 120.0  # a backstop; Engine.exec bounds every command itself with `timeout`
NEVER = "0001-01-01T00:00:00Z"
_VERSIONED = re.compile(r"^/v\d+\.\d+")
_PROC_NET = ("/proc/net/tcp", "/proc/net/tcp6")
CONTAINER_ENV = "PORTBINDING_PROCESS_CONTAINER"  # every process of a container inherits it


class ApiError(Exception):
    """An error answered as the Docker API does: a status code and {"message": ...}."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def image_id(recipe: Recipe) -> str:
    return recipe.ident


# ------------------------------------------------------------------------------ output


class Output:
    """A container's stdout and stderr as Docker keeps them: frames of (stream, bytes)."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, bytes]] = []
        self.closed = False
        self.changed = threading.Condition()

    def add(self, stream: int, data: bytes) -> None:
        with self.changed:
            self.frames.append((stream, data))
            self.changed.notify_all()

    def close(self) -> None:
        with self.changed:
            self.closed = True
            self.changed.notify_all()

    def follow(self, start: int) -> Iterator[tuple[int, bytes]]:
        """Frames from index ``start`` on, waiting for new ones until the output closes."""
        index = start
        while True:
            with self.changed:

                def ready(at: int = index) -> bool:
                    return len(self.frames) > at or self.closed

                self.changed.wait_for(ready, timeout=1.0)
                batch = self.frames[index:]
                done = self.closed and len(self.frames) == index + len(batch)
            yield from batch
            index += len(batch)
            if done:
                return


def frame(stream: int, data: bytes) -> bytes:
    """One frame of Docker's multiplexed stream: stream, 3 zero bytes, big-endian length."""
    return struct.pack(">BxxxL", stream, len(data)) + data


# ------------------------------------------------------------------------------ containers


@dataclass
class ProcessContainer:
    """One container: a recipe, a run configuration, and (once started) a process group."""

    id: str
    name: str
    image: str  # the reference it was created from, as the run line named it
    recipe: Recipe
    command: list[str]
    env: dict[str, str]
    labels: dict[str, str]
    port_bindings: PortMap
    publish_all: bool
    auto_remove: bool
    net: ContainerNet
    root: Path
    created: str = field(default_factory=_now)
    process: subprocess.Popen[bytes] | None = None
    status: str = "created"
    exit_code: int = 0
    started_at: str = NEVER
    finished_at: str = NEVER
    error: str = ""
    publishers: dict[tuple[int, str], Publisher] = field(default_factory=dict)
    output: Output = field(default_factory=Output)

    @property
    def argv(self) -> list[str]:
        return [*self.recipe.entrypoint, *(self.command or self.recipe.cmd)]

    def inspect(self) -> dict[str, Any]:
        running = self.status == "running"
        ports: dict[str, Any] = {f"{p}/tcp": None for p in self.recipe.exposed}  # exposed only: null
        for (port, host_ip), publisher in self.publishers.items():
            bindings = ports.get(f"{port}/tcp") or []
            ports[f"{port}/tcp"] = [*bindings, {"HostIp": host_ip, "HostPort": str(publisher.port)}]
        return {
            "Id": self.id,
            "Name": f"/{self.name}",
            "Created": self.created,
            "Path": self.argv[0] if self.argv else "",
            "Args": self.argv[1:],
            "Image": image_id(self.recipe),
            "State": {
                "Status": self.status,
                "Running": running,
                "Paused": False,
                "Restarting": False,
                "OOMKilled": False,
                "Dead": False,
                "Pid": self.process.pid if running and self.process else 0,
                "ExitCode": self.exit_code,
                "Error": self.error,
                "StartedAt": self.started_at,
                "FinishedAt": self.finished_at,
            },
            "Config": {
                "Hostname": self.id[:12],
                "Image": self.image,
                "Cmd": self.command or list(self.recipe.cmd),
                "Entrypoint": list(self.recipe.entrypoint) or None,
                "Env": [f"{k}={v}" for k, v in self.env.items()],
                "ExposedPorts": {f"{p}/tcp": {} for p in self.recipe.exposed},
                "Labels": self.labels,
                "WorkingDir": self.recipe.workdir,
                "Tty": False,
                "User": "",
            },
            "HostConfig": {
                # No limits are applied to a process (no cgroups without root), so none are shown.
                "Memory": 0,
                "NanoCpus": 0,
                "PidsLimit": None,
                "PortBindings": self.port_bindings,
                "PublishAllPorts": self.publish_all,
                "AutoRemove": self.auto_remove,
            },
            "NetworkSettings": {
                "IPAddress": self.net.eth if running else "",
                "Gateway": "127.0.0.1" if running else "",
                "Ports": ports if running else {},
                "Networks": {
                    "bridge": {"IPAddress": self.net.eth if running else "", "Gateway": "127.0.0.1"}
                },
            },
        }

    def summary(self) -> dict[str, Any]:
        attrs = self.inspect()
        return {
            "Id": self.id,
            "Names": [f"/{self.name}"],
            "Image": attrs["Config"]["Image"],
            "ImageID": attrs["Image"],
            "Command": " ".join(self.argv),
            "Created": int(time.time()),
            "State": self.status,
            "Status": self.status,
            "Labels": attrs["Config"]["Labels"],
            "Ports": [
                {"PrivatePort": port, "PublicPort": p.port, "IP": ip, "Type": "tcp"}
                for (port, ip), p in self.publishers.items()
            ],
        }


class Daemon:
    """The containers, and what the API does with them."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.catalogue = recipes()
        self.containers: dict[str, ProcessContainer] = {}
        self.execs: dict[str, dict[str, Any]] = {}
        self.built: dict[str, Path] = {}  # image id -> its build context, for images built here
        self.lock = threading.RLock()

    # -------------------------------------------------------------------- lookup

    def recipe(self, reference: str) -> Recipe:
        short = reference.removeprefix("sha256:")
        found = find(reference, self.catalogue) or next(
            (r for r in self.catalogue.values() if len(short) >= 12 and r.ident[7:].startswith(short)), None
        )
        if found is None:
            raise ApiError(404, f"No such image: {reference}")
        return found

    def build(
        self,
        context_tar: bytes,
        tags: tuple[str, ...],
        *,
        dockerfile: str,
        build_args: dict[str, str],
        labels: dict[str, str],
        gzip: bool,
    ) -> Recipe:
        """A new image from a build context: the Dockerfile followed, the files kept here."""
        context = self.state_dir / "images" / uuid.uuid4().hex[:12]
        context.mkdir(parents=True)
        try:
            with tarfile.open(fileobj=io.BytesIO(context_tar), mode="r:gz" if gzip else "r:*") as archive:
                _extract(archive, context)
            text = (context / dockerfile).read_text()
            with self.lock:
                recipe = from_dockerfile(
                    text, context, tags=tags, build_args=build_args, labels=labels, catalogue=self.catalogue
                )
                self.catalogue.update({tag: recipe for tag in tags})
        except (OSError, tarfile.TarError, RecipeError) as exc:
            shutil.rmtree(context, ignore_errors=True)
            raise exc if isinstance(exc, RecipeError) else RecipeError(f"the build context: {exc}") from exc
        self.built[recipe.ident] = context
        return recipe

    def remove_image(self, reference: str) -> list[dict[str, str]]:
        recipe = self.recipe(reference)
        if recipe.ident not in self.built:
            raise ApiError(409, f"conflict: {reference} is a course image; the process engine keeps those")
        with self.lock:
            tags = [tag for tag, r in self.catalogue.items() if r.ident == recipe.ident]
            for tag in tags:
                del self.catalogue[tag]
            shutil.rmtree(self.built.pop(recipe.ident), ignore_errors=True)
        return [*({"Untagged": tag} for tag in tags), {"Deleted": recipe.ident}]

    def container(self, name_or_id: str) -> ProcessContainer:
        with self.lock:
            for item in self.containers.values():
                if name_or_id in (item.id, item.name) or (
                    len(name_or_id) >= 4 and item.id.startswith(name_or_id)
                ):
                    return item
        raise ApiError(404, f"No such container: {name_or_id}")

    # -------------------------------------------------------------------- lifecycle

    def create(self, name: str | None, body: dict[str, Any]) -> ProcessContainer:
        recipe = self.recipe(str(body.get("Image", "")))
        host = dict(body.get("HostConfig") or {})
        with self.lock:
            if name and any(c.name == name for c in self.containers.values()):
                other = next(c for c in self.containers.values() if c.name == name)
                raise ApiError(
                    409,
                    f'Conflict. The container name "/{name}" is already in use by container "{other.id}". '
                    "You have to remove (or rename) that container to be able to reuse that name.",
                )
            used = {c.net.index for c in self.containers.values()}
            free = [n for n in range(1, MAX_CONTAINERS + 1) if n not in used]
            if not free:
                raise ApiError(500, f"the process engine runs at most {MAX_CONTAINERS} containers")
            ident = uuid.uuid4().hex + uuid.uuid4().hex
            root = self.state_dir / "containers" / ident[:12]
            env = dict(recipe.env)
            env.update(item.split("=", 1) for item in body.get("Env") or [] if "=" in item)
            container = ProcessContainer(
                id=ident,
                name=name or f"process_{ident[:6]}",
                image=str(body.get("Image")),
                recipe=recipe,
                command=[str(c) for c in body.get("Cmd") or []],
                env=env,
                labels={**recipe.labels, **(body.get("Labels") or {})},
                port_bindings=dict(host.get("PortBindings") or {}),
                publish_all=bool(host.get("PublishAllPorts")),
                auto_remove=bool(host.get("AutoRemove")),
                net=ContainerNet(free[0], root / ".ports.json"),
                root=root,
            )
            self.containers[ident] = container
        _populate(container)
        return container

    def start(self, container: ProcessContainer) -> None:
        with self.lock:
            if container.status == "running":
                return
            container.net.ports_file.unlink(missing_ok=True)
            env = _environment(container)
            argv = _resolve(container, env)  # before publishing: a bad command leaves no port open
            self._publish(container)
            try:
                container.process = subprocess.Popen(
                    argv,
                    cwd=_in_root(container, container.recipe.workdir),
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    start_new_session=True,  # its own process group: stop/kill reach every child
                )
            except OSError as exc:
                self._unpublish(container)
                container.status, container.exit_code = "exited", 127
                container.error = str(exc)
                raise ApiError(400, f"failed to start the container's process: {exc}") from exc
            container.status, container.started_at, container.finished_at = "running", _now(), NEVER
            container.output = Output() if container.output.closed else container.output
        readers = [
            threading.Thread(target=_read, args=(stream, number, container.output), daemon=True)
            for number, stream in ((1, container.process.stdout), (2, container.process.stderr))
        ]
        for reader in readers:
            reader.start()
        threading.Thread(
            target=self._watch, args=(container, container.process, readers), daemon=True
        ).start()

    def _publish(self, container: ProcessContainer) -> None:
        wanted = from_bindings(container.port_bindings)
        if container.publish_all:
            published = {m.container_port for m in wanted}
            exposed = [port for port in container.recipe.exposed if port not in published]
            wanted += [PortMapping(port, "tcp", "", None) for port in exposed]
        try:
            for mapping in wanted:
                if ":" in mapping.host_ip:
                    raise ApiError(
                        400, f"the process engine publishes on IPv4 addresses only, not {mapping.host_ip}"
                    )
                port = mapping.container_port
                container.publishers[(port, mapping.host_ip or "0.0.0.0")] = _publisher(
                    mapping, _target(container.net, port)
                )
        except PortTaken as exc:
            self._unpublish(container)
            raise ApiError(
                500,
                f"driver failed programming external connectivity on endpoint {container.name} "
                f"({container.id[:12]}): {exc.strerror}",
            ) from exc
        except OSError as exc:
            self._unpublish(container)
            raise ApiError(500, f"could not publish a port: {exc}") from exc

    def _unpublish(self, container: ProcessContainer) -> None:
        for publisher in container.publishers.values():
            publisher.close()
        container.publishers.clear()

    def _watch(
        self, container: ProcessContainer, process: subprocess.Popen[bytes], readers: list[threading.Thread]
    ) -> None:
        code = process.wait()
        # As when a container's PID 1 exits: everything else in it ends too, daemons included.
        _kill_group(process, signal.SIGKILL)
        _kill_marked(container.id)
        for reader in readers:
            reader.join(timeout=5)
        with self.lock:
            self._unpublish(container)
            container.status, container.exit_code, container.finished_at = (
                "exited",
                _exit_status(code),
                _now(),
            )
            container.output.close()
            if container.auto_remove:
                self._forget(container)

    def stop(self, container: ProcessContainer, timeout: float, sig: int = signal.SIGTERM) -> None:
        process = container.process
        if container.status != "running" or process is None:
            return
        _kill_group(process, sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process, signal.SIGKILL)
            process.wait(timeout=10)
        self.wait_exited(container, 10)

    def wait_exited(self, container: ProcessContainer, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with container.output.changed:
            container.output.changed.wait_for(
                lambda: container.status != "running" or time.monotonic() > deadline, timeout=timeout
            )

    def remove(self, container: ProcessContainer, force: bool) -> None:
        if container.status == "running":
            if not force:
                raise ApiError(
                    409,
                    f"You cannot remove a running container {container.id}. Stop the container before "
                    "attempting removal or force remove",
                )
            self.stop(container, 0, signal.SIGKILL)
        with self.lock:
            self._forget(container)

    def _forget(self, container: ProcessContainer) -> None:
        self.containers.pop(container.id, None)
        shutil.rmtree(container.root, ignore_errors=True)

    def shutdown(self) -> None:
        """End every container, as dockerd does when it stops."""
        for container in list(self.containers.values()):
            with contextlib.suppress(Exception):
                self.remove(container, force=True)

    # -------------------------------------------------------------------- exec

    def exec_run(self, container: ProcessContainer, argv: list[str]) -> tuple[int, bytes]:
        """Run ``argv`` inside the container: as its processes run, with its network view."""
        command = _without_timeout(argv)
        if command[:1] == ["cat"] and command[1:] and set(command[1:]) <= set(_PROC_NET):
            return 0, container.net.proc_net_tcp().encode()
        env = _environment(container)
        try:
            done = subprocess.run(
                _resolve(container, env, argv),
                cwd=_in_root(container, container.recipe.workdir),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=EXEC_TIMEOUT,
                check=False,
            )
        except FileNotFoundError:
            return 127, f"exec: {argv[0]!r}: executable file not found in $PATH\n".encode()
        except subprocess.TimeoutExpired as exc:
            return 137, bytes(exc.output or b"")
        return _exit_status(done.returncode), done.stdout


def _publisher(mapping: PortMapping, target: Callable[[], tuple[str, int] | None]) -> Publisher:
    """Publish ``mapping``: on every host address or its own; a host range takes its first free port.

    Docker's port allocator hands out the first port of a range it has not handed out itself;
    here the first one that can be bound stands in for that.
    """
    addresses = host_addresses() if mapping.host_ip in ("", "0.0.0.0") else [mapping.host_ip]
    first = mapping.host_port or 0
    last = mapping.host_port_end or first
    for candidate in range(first, last + 1):
        try:
            return Publisher(addresses, candidate, target)
        except PortTaken:
            if candidate == last:
                raise
    raise AssertionError("unreachable: range(first, last + 1) is never empty")


def _target(net: ContainerNet, port: int) -> Callable[[], tuple[str, int] | None]:
    def target() -> tuple[str, int] | None:
        return (net.eth, net.real_eth_port(port)) if net.listens_on_eth(port) else None

    return target


def _exit_status(code: int) -> int:
    return 128 - code if code < 0 else code  # killed by signal N: 128+N, as a shell reports it


def _kill_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def _kill_marked(container_id: str) -> None:
    """SIGKILL every process of the container, found by the variable each one inherits.

    A process that left the container's process group (a server that daemonises with
    setsid, like the placeholder of the port_retried scenario) still carries it.
    """
    marker = f"{CONTAINER_ENV}={container_id}".encode() + b"\0"
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if marker in (entry / "environ").read_bytes():
                os.kill(int(entry.name), signal.SIGKILL)


def _read(stream: Any, number: int, output: Output) -> None:
    for chunk in iter(lambda: stream.read1(65536), b""):
        output.add(number, chunk)


def _without_timeout(argv: list[str]) -> list[str]:
    """``argv`` without coreutils' ``timeout [-s SIG] DURATION`` in front (Engine.exec adds it)."""
    if argv[:1] != ["timeout"]:
        return argv
    rest = argv[1:]
    while rest and rest[0].startswith("-"):
        rest = rest[2:] if rest[0] in ("-s", "--signal", "-k", "--kill-after") else rest[1:]
    return rest[1:]


# ------------------------------------------------------------------------------ the filesystem


def _populate(container: ProcessContainer) -> None:
    """The image's files under the container's root, where its Dockerfile COPYs them."""
    recipe, root = container.recipe, container.root
    for source, destination in recipe.copies:  # in Dockerfile order: a later COPY wins
        target = root / destination.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    for folder in (recipe.workdir, "/home/learner", "/tmp"):
        (root / folder.lstrip("/")).mkdir(parents=True, exist_ok=True)
    _quiet_jupyter_extensions(root / "home/learner/.jupyter")


def _quiet_jupyter_extensions(config_dir: Path) -> None:
    """Turn off the server extensions of the course's own environment for the container.

    The image's Jupyter Server has no extensions; the course's environment has JupyterLab,
    nbgrader and more enabled for every server it starts. The user-level config (highest
    priority) switches them off, so the container's server starts as lean as the image's.
    """
    enabled: dict[str, bool] = {}
    for folder in (Path(sys.prefix) / "etc/jupyter/jupyter_server_config.d",):
        for path in sorted(folder.glob("*.json")):
            with contextlib.suppress(OSError, ValueError):
                names = json.loads(path.read_text()).get("ServerApp", {}).get("jpserver_extensions", {})
                enabled.update({name: False for name in names})
    config_dir.mkdir(parents=True, exist_ok=True)
    # The image runs as the unprivileged `learner`; a daemon run by root (a test machine) runs its
    # containers' servers as root, which Jupyter refuses without this.
    config = {"ServerApp": {"jpserver_extensions": enabled, "allow_root": os.geteuid() == 0}}
    (config_dir / "jupyter_server_config.json").write_text(json.dumps(config))


def _in_root(container: ProcessContainer, path: str) -> str:
    """An absolute path inside the container, on the host: under its root when the image has it."""
    inside = container.root / path.lstrip("/")
    return str(inside) if inside.exists() or (inside.parent.exists() and path != "/") else path


def _relocated(container: ProcessContainer, value: str) -> str:
    return _in_root(container, value) if value.startswith("/") and value != "/" else value


def _environment(container: ProcessContainer) -> dict[str, str]:
    root = container.root
    env = {
        "PATH": os.pathsep.join(
            [str(root / "usr/local/bin"), str(Path(sys.executable).parent), "/usr/bin:/bin"]
        ),
        "HOME": str(root / "home/learner"),
        "HOSTNAME": container.id[:12],
        "LANG": "C.UTF-8",
        "TMPDIR": str(root / "tmp"),
        "PYTHONPATH": str(SHIM_DIR),
        "JUPYTER_CONFIG_DIR": str(root / "home/learner/.jupyter"),
        "JUPYTER_CONFIG_PATH": str(root / "etc/jupyter"),
        "JUPYTER_DATA_DIR": str(root / "home/learner/.local/share/jupyter"),
        "JUPYTER_RUNTIME_DIR": str(root / "tmp/jupyter-runtime"),
    }
    env.update({k: _relocated(container, v) for k, v in container.env.items()})
    env.update(container.net.env())
    env[CONTAINER_ENV] = container.id
    return env


def _resolve(container: ProcessContainer, env: dict[str, str], argv: list[str] | None = None) -> list[str]:
    """``argv`` (default: the container's command) with its paths and program found in ``env``."""
    words = [_relocated(container, word) for word in (argv if argv is not None else container.argv)]
    if not words:
        raise ApiError(400, "no command specified")
    if "/" not in words[0]:
        found = shutil.which(words[0], path=env["PATH"])
        if found is None:
            raise ApiError(400, f'exec: "{words[0]}": executable file not found in $PATH')
        words[0] = found
    return words


# ------------------------------------------------------------------------------ the API


class Handler(BaseHTTPRequestHandler):
    """One API connection. Routes by method and path, answers JSON or a raw stream."""

    protocol_version = "HTTP/1.1"
    server: Server

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
            frames = _tail(frames, int(tail))
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
        deadline = time.monotonic() + 5
        while _unread(self.connection) and time.monotonic() < deadline:
            time.sleep(0.0005)  # polling a condition (the peer's read), with a deadline

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


def _extract(archive: tarfile.TarFile, into: Path) -> None:
    """Unpack regular files and folders only, none outside ``into``.

    (``extractall(filter="data")`` does this from Python 3.11.4; Debian 12 has 3.11.2.)
    """
    for member in archive.getmembers():
        target = (into / member.name).resolve()
        if into.resolve() not in (target, *target.parents) or not (member.isfile() or member.isdir()):
            raise RecipeError(f"the build context holds {member.name!r}, which a build may not unpack")
        if member.isdir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        source = archive.extractfile(member)
        if source is not None:
            target.write_bytes(source.read())
            target.chmod(0o755 if member.mode & 0o111 else 0o644)


def _tail(frames: list[tuple[int, bytes]], lines: int) -> list[tuple[int, bytes]]:
    """The last ``lines`` lines of the output, split per line as Docker's log driver keeps it."""
    split = [(n, line) for n, data in frames for line in data.splitlines(keepends=True)]
    return split[-lines:] if lines else []


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


class Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, daemon: Daemon) -> None:
        self.daemon = daemon
        super().__init__(path, Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        request, _ = super().get_request()
        return request, ("process-engine-client", 0)  # BaseHTTPRequestHandler wants a host


def serve(socket_path: Path, state_dir: Path) -> None:
    """Answer the API on ``socket_path`` until SIGTERM/SIGINT; then end every container."""
    state_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(state_dir / "containers", ignore_errors=True)  # a killed daemon's leftovers
    if socket_path.exists():
        with socket.socket(socket.AF_UNIX) as probe:
            probe.settimeout(2)
            if probe.connect_ex(str(socket_path)) == 0:
                raise SystemExit(f"a process engine already answers on {socket_path}")
        socket_path.unlink()
    daemon = Daemon(state_dir)
    server = Server(str(socket_path), daemon)
    os.chmod(socket_path, 0o600)  # like Docker's socket: whoever may use it controls the engine

    def stop(signum: int, _frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        daemon.shutdown()
        server.server_close()
        socket_path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The Port Binding Lab process engine daemon.")
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--state", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    serve(args.socket, args.state)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
