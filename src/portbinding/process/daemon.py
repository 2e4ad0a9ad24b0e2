"""The process engine's daemon: its containers' lifecycle, and serving the API on a Unix socket.

Containers are process groups started from a course image's recipe (see the package docstring
and :mod:`container`); :mod:`api` answers the part of the Docker Engine API the course uses.
Like dockerd without live-restore, the daemon's containers end when it ends.

Run ``python -m portbinding.process.daemon --socket PATH`` (``launch.ensure_running`` does).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import tarfile
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from portbinding.ports import PortMapping, from_bindings
from portbinding.process.api import Handler
from portbinding.process.container import (
    CONTAINER_ENV,
    NEVER,
    ApiError,
    ProcessContainer,
    environment,
    in_root,
    now,
    populate,
    resolve,
)
from portbinding.process.netview import MAX_CONTAINERS, ContainerNet, host_addresses
from portbinding.process.output import Output, read_into
from portbinding.process.publisher import PortTaken, Publisher
from portbinding.process.recipes import Recipe, RecipeError, find, from_dockerfile, recipes, unavailable

LOGGER = logging.getLogger(__name__)
EXEC_TIMEOUT = 120.0  # a backstop; Engine.exec bounds every command itself with `timeout`
_PROC_NET = ("/proc/net/tcp", "/proc/net/tcp6")


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
            why = unavailable(reference)
            raise ApiError(404, f"No such image: {reference}" + (f" ({why})" if why else ""))
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
        populate(container)
        return container

    def start(self, container: ProcessContainer) -> None:
        with self.lock:
            if container.status == "running":
                return
            container.net.ports_file.unlink(missing_ok=True)
            env = environment(container)
            argv = resolve(container, env)  # before publishing: a bad command leaves no port open
            self._publish(container)
            try:
                container.process = subprocess.Popen(
                    argv,
                    cwd=in_root(container, container.recipe.workdir),
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
            container.status, container.started_at, container.finished_at = "running", now(), NEVER
            container.output = Output() if container.output.closed else container.output
            LOGGER.info("started %s (%s): %s", container.name, container.id[:12], argv)
        readers = [
            threading.Thread(target=read_into, args=(stream, number, container.output), daemon=True)
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
                now(),
            )
            container.output.close()
            LOGGER.info("%s (%s) exited with %s", container.name, container.id[:12], container.exit_code)
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
        """Wait until the container is no longer running (its watcher closes the output then)."""
        with container.output.changed:
            container.output.changed.wait_for(lambda: container.status != "running", timeout=timeout)

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
        env = environment(container)
        try:
            done = subprocess.run(
                resolve(container, env, argv),
                cwd=in_root(container, container.recipe.workdir),
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


def _without_timeout(argv: list[str]) -> list[str]:
    """``argv`` without coreutils' ``timeout [-s SIG] DURATION`` in front (Engine.exec adds it)."""
    if argv[:1] != ["timeout"]:
        return argv
    rest = argv[1:]
    while rest and rest[0].startswith("-"):
        rest = rest[2:] if rest[0] in ("-s", "--signal", "-k", "--kill-after") else rest[1:]
    return rest[1:]


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
