"""Finding the container engine a learner's tools would use, and what it is.

Candidates are tried in the order a learner's tools would use them: DOCKER_HOST, the default
Docker socket, the current docker context, then rootless sockets (Podman, rootless Docker).
The first that answers wins. ``EngineInfo`` says what it is and where its published ports
are reached, which is not always 127.0.0.1 (a remote engine, or a course running inside a
container). Installing and starting an engine where there is none is :mod:`provision`'s job.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, TypeAlias
from urllib.parse import urlparse

import docker
import docker.errors
import requests.exceptions

from portbinding import settings
from portbinding.dockerjson import version_info
from portbinding.errors import EngineUnavailable
from portbinding.host import debian_like
from portbinding.process import launch as process_engine

LOGGER = logging.getLogger(__name__)

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
EngineKind: TypeAlias = Literal["docker", "podman", "process"]


@dataclass(frozen=True)
class EngineInfo:
    """What answered, and how to reach the ports it publishes."""

    url: str
    source: str
    kind: EngineKind
    version: str
    api_version: str
    rootless: bool
    publish_host: str
    publish_host_reason: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def describe(self) -> str:
        if self.kind == "process":
            return (
                f"The course's process engine {self.version} at {self.url} (found via {self.source}): "
                "no container engine here, so the exercise servers run as local processes, each "
                "with addresses of its own, and the course's publisher plays docker-proxy's part. "
                f"Published ports are reached at {self.publish_host}. What differs from Docker: "
                "no isolation or limits (the processes are yours), Python servers only, IPv4 "
                "only, and builds follow COPY/ENV/CMD/ENTRYPOINT/EXPOSE/WORKDIR/LABEL but not RUN."
            )
        mode = "rootless " if self.rootless else ""
        return (
            f"{mode}{self.kind.capitalize()} {self.version} (API {self.api_version}) at {self.url}, "
            f"found via {self.source}. Published ports are reached at {self.publish_host} "
            f"({self.publish_host_reason})."
        )


def candidates() -> list[tuple[str, str]]:
    """Every engine address worth trying, as ``(url, where it came from)``, without duplicates."""
    found: list[tuple[str, str]] = []
    if process_engine.selected():  # the learner chose it (binder/start does): nothing else
        return [(process_engine.url(), f"the process engine ({settings.ENGINE_ENV}=process)")]
    if settings.docker_host():
        # Authoritative, as for the docker CLI: a learner who set it and whose engine there does
        # not answer must hear that, not be given the local engine without a word.
        return [(settings.docker_host(), "DOCKER_HOST")]
    found.append((DEFAULT_SOCKET, "the default Docker socket"))
    context = _docker_context_host()
    if context:
        found.append(context)
    runtime_dir = settings.runtime_dir()
    found.append((f"unix://{runtime_dir}/podman/podman.sock", "the rootless Podman socket"))
    found.append((f"unix://{runtime_dir}/docker.sock", "the rootless Docker socket"))
    unique: dict[str, str] = {}
    for url, source in found:
        unique.setdefault(url, source)
    return list(unique.items())


def _docker_context_host() -> tuple[str, str] | None:
    """The endpoint of the current `docker context`, read from the CLI's own files."""
    config_dir = settings.docker_config_dir()
    try:
        name = settings.docker_context() or json.loads((config_dir / "config.json").read_text()).get(
            "currentContext"
        )
        if not name or name == "default":
            return None
        meta_dir = config_dir / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
        meta = json.loads((meta_dir / "meta.json").read_text())
        host = meta["Endpoints"]["docker"]["Host"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (str(host), f"docker context {name!r}")


def connect(url: str, *, timeout: float = 30.0) -> docker.DockerClient:
    """A Docker SDK client for ``url`` (the SDK asks for the API version as it is constructed).

    ssh:// goes through paramiko (the SDK's default), not the ``ssh`` program: ``timeout`` then
    bounds every read, and a host-key or password prompt can never hang a notebook kernel on a
    terminal nobody sees. ~/.ssh (config, keys, known_hosts) and the ssh agent are still used;
    the remote side runs ``docker system dial-stdio``, so it needs the docker CLI.
    """
    if not url.startswith("ssh://"):
        return docker.DockerClient(base_url=url, timeout=int(timeout))
    import paramiko

    host, port, proxied = _ssh_target(url)
    if not proxied:
        # paramiko opens its TCP connection with no timeout: an unreachable host would hang for
        # the kernel's minutes of retries. A plain connect with our timeout fails fast instead.
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError as exc:
            raise OSError(f"nothing answers on {host}:{port} (ssh): {exc}") from exc
    try:
        return docker.DockerClient(base_url=url, timeout=int(timeout))
    except paramiko.SSHException as exc:  # unknown host key, no key accepted, ...
        raise docker.errors.DockerException(f"ssh to {host}:{port} failed: {exc}") from exc


def _ssh_target(url: str) -> tuple[str, int, bool]:
    """``(host, port, proxied)`` an ssh:// URL reaches once ~/.ssh/config applies, as the SDK reads it."""
    import paramiko

    parsed = urlparse(url)
    host, port = parsed.hostname or "", parsed.port or 22
    config = Path(os.path.expanduser("~/.ssh/config"))
    if not config.is_file():
        return host, port, False
    entry = paramiko.SSHConfig.from_path(str(config)).lookup(host)
    port = parsed.port or int(entry.get("port", port))
    return str(entry.get("hostname", host)), port, "proxycommand" in entry


def find_engine(*, timeout: float = 5.0) -> tuple[docker.DockerClient, EngineInfo]:
    """The first engine that answers; EngineUnavailable (saying why each failed) when none does."""
    failures: list[str] = []
    denied: list[str] = []
    if process_engine.selected():
        process_engine.ensure_running()
    for url, source in candidates():
        path = urlparse(url).path if url.startswith("unix://") else ""
        if path and not os.path.exists(path):
            failures.append(f"{source}: {path} does not exist")
            LOGGER.debug("engine candidate %s (%s): %s does not exist", url, source, path)
            continue
        client = None
        try:
            # The SDK asks for the API version as it is constructed, so that can fail too.
            client = connect(url, timeout=timeout)
            client.ping()
            version = client.version()
        except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
            if client is not None:
                client.close()
            if _permission_denied(exc):
                denied.append(path or url)
            failures.append(f"{source}: {_short(exc)}")
            LOGGER.debug("engine candidate %s (%s) did not answer: %s", url, source, exc)
            continue
        LOGGER.debug("engine candidate %s (%s) answers: %s", url, source, version.get("Version"))
        return client, _describe(url, source, version, client)
    raise _unavailable(failures, denied)


def _permission_denied(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, PermissionError) or "permission denied" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _unavailable(failures: list[str], denied: list[str]) -> EngineUnavailable:
    tried = "\n".join(f"  - {line}" for line in failures)
    from portbinding.hub.student import host_engine_refused, on_hub

    if denied and on_hub():
        return host_engine_refused(denied[0], tried)
    if denied:
        return EngineUnavailable(
            f"A container engine is there, but you may not use it: permission denied on {denied[0]}.\n"
            f"Tried:\n{tried}",
            hint="add yourself to the `docker` group (`sudo usermod -aG docker $USER`, then log out "
            "and back in), or use rootless Podman (`systemctl --user start podman.socket`)",
        )
    if os.geteuid() == 0 and debian_like():
        hint = "run `portbinding doctor --install` to install Debian's docker.io and start it"
    else:
        hint = (
            "install Docker (https://docs.docker.com/engine/install/) or Podman and start it; on "
            "Debian/Ubuntu as root, `portbinding doctor --install` does it for you. With an engine "
            "elsewhere, set DOCKER_HOST (for example ssh://you@server). With none at all (Binder), "
            "the course's process engine runs the exercises as local processes: set "
            f"{settings.ENGINE_ENV}=process"
        )
    return EngineUnavailable(f"No container engine answers.\nTried:\n{tried}", hint=hint)


def _describe(url: str, source: str, answer: dict[str, Any], client: docker.DockerClient) -> EngineInfo:
    version = version_info(answer)
    names = " ".join(str(c.get("Name", "")) for c in version.get("Components") or [])
    kind: EngineKind = "docker"
    if process_engine.COMPONENT in names:
        kind = "process"
    elif "podman" in names.lower() or "podman" in url:
        kind = "podman"
    host, reason = publish_host(url, client)
    rootless = "rootless" in source or (url.startswith("unix://") and "/run/user/" in url)
    return EngineInfo(
        url=url,
        source=source,
        kind=kind,
        version=str(version.get("Version", "?")),
        api_version=str(version.get("ApiVersion", "?")),
        rootless=rootless,
        publish_host=host,
        publish_host_reason=reason,
    )


def publish_host(url: str, client: docker.DockerClient | None = None) -> tuple[str, str]:
    """Where ports published by the engine at ``url`` are reached from here, and why."""
    override = settings.publish_host()
    if override:
        return override, f"set by {settings.PUBLISH_HOST_ENV}"
    parsed = urlparse(url)
    if parsed.scheme in ("tcp", "ssh", "http", "https") and parsed.hostname:
        # An ssh config alias (Host server / HostName 10.0.0.5) is no name a probe can resolve.
        host = _ssh_target(url)[0] if parsed.scheme == "ssh" else parsed.hostname
        if host in ("localhost", "127.0.0.1", "::1"):
            return host, "the engine runs on this machine"
        return host, "the engine's host, not localhost: the ports it publishes open where it runs"
    if client is not None and _inside_container() and _we_are_its_container(client):
        gateway = _default_gateway()
        if gateway:
            return gateway, (
                "this course runs in a container of that engine; its ports open on the engine's "
                "host, reached through the default gateway"
            )
    return "127.0.0.1", "the engine runs on this machine"


def _we_are_its_container(client: docker.DockerClient) -> bool:
    """Whether this process runs inside one of the engine's own containers (a mounted socket)."""
    try:
        client.containers.get(socket.gethostname())
        return True
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        return False


def _inside_container() -> bool:
    return os.path.exists("/.dockerenv") or os.path.exists("/run/.containerenv")


def _default_gateway() -> str | None:
    """The IPv4 default gateway from /proc/net/route (little-endian hex), if there is one."""
    try:
        lines = Path("/proc/net/route").read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) > 2 and fields[1] == "00000000":
            raw = bytes.fromhex(fields[2])[::-1]
            return ".".join(str(b) for b in raw)
    return None


def answers(url: str) -> bool:
    """Whether an engine answers at ``url`` right now (the SDK connects as it is constructed)."""
    try:
        with contextlib.closing(connect(url, timeout=5)) as client:
            return bool(client.ping())
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError):
        return False


def engine_info(url: str, client: docker.DockerClient, *, source: str) -> EngineInfo:
    """What answers at ``url`` (for a caller that chose the engine itself, e.g. a test)."""
    return _describe(url, source, client.version(), client)
