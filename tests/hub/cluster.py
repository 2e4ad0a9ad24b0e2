"""A grading cluster for the tests and the bench: Redis, and workers here or in network namespaces.

Each "other machine" is a network namespace with its own dockerd (``tests.engine.netns``), the
course images loaded from one cached ``docker save`` archive; its worker runs inside the
namespace with DOCKER_HOST on that dockerd, reaching Redis over the veth pair. Redis listens on
loopback and on the pairs' host-side addresses only, with a password.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import docker

from portbinding.engine import free_port
from portbinding.host import apt_install, log_tail
from portbinding.probe import wait_until
from tests.support.netns import RemoteHost, remote_host

REDIS = Path("/usr/bin/redis-server")
IMAGE_CACHE = Path("/var/cache/portbinding-test/worker-images")
# What grading ex01-ex03 runs: the exercise images and the bases the checks build on.
GRADING_IMAGES = (
    "portbinding/python-base:bookworm",
    "portbinding/notebook-loopback:1.0",
    "portbinding/notebook:1.0",
    "portbinding/scoring-api:1.0",
    "portbinding/crash-before-listen:1.0",
    "portbinding/slow-start:1.0",
)


# In a private mount namespace: a sysfs mounted from inside the network namespace shows its own
# devices; bind its two network folders over the host's (class/net links into devices/virtual/net).
OWN_SYSFS_NET = (
    'set -e; d=$(mktemp -d); mount -t sysfs sysfs "$d"; '
    'mount --bind "$d/class/net" /sys/class/net; '
    'mount --bind "$d/devices/virtual/net" /sys/devices/virtual/net; '
    'umount -l "$d"; rmdir "$d"; exec "$@"'
)


@dataclass
class Worker:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def pids(self) -> list[int]:
        """The worker's main process and its pool children (not the grading runs they start)."""
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == self.process.pid:
                    children.append(int(stat.parent.name))
        return [self.process.pid, *children]


def _redis_answers(port: int, password: str) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(f"AUTH {password}\r\nPING\r\n".encode())
            reply = b""
            while b"\r\n" not in reply.partition(b"\r\n")[2]:  # both replies: +OK and +PONG
                chunk = sock.recv(256)
                if not chunk:
                    break
                reply += chunk
            return b"+PONG" in reply
    except OSError:
        return False


@contextlib.contextmanager
def redis_server(addresses: Sequence[str] = ()) -> Iterator[tuple[int, str]]:
    """Redis on loopback and ``addresses``, a fresh password; yields (port, password)."""
    if not REDIS.exists():
        apt_install("redis-server")
    port, password = free_port(), secrets.token_hex(16)
    folder = Path(tempfile.mkdtemp(prefix="pbl-redis-"))
    config = folder / "redis.conf"
    # The password goes in a root-only file, not on a command line others can read in /proc.
    config.write_text(
        f"port {port}\nbind 127.0.0.1 {' '.join(addresses)}\nrequirepass {password}\n"
        f'dir {folder}\nsave ""\nappendonly no\nprotected-mode yes\n'
    )
    os.chmod(config, 0o600)
    log = folder / "redis.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(REDIS), str(config)], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        up = wait_until(
            lambda: _redis_answers(port, password), timeout=20, alive=lambda: process.poll() is None
        )
        assert up, f"redis-server did not answer:\n{log_tail(log, 15)}"
        yield port, password
    finally:
        _stop(process)
        shutil.rmtree(folder, ignore_errors=True)


def broker_url(host: str, port: int, password: str) -> str:
    return f"redis://:{password}@{host}:{port}/0"


def image_archive(client: docker.DockerClient, references: Sequence[str] = GRADING_IMAGES) -> Path:
    """One cached ``docker save`` of the grading images, keyed by their ids (rebuilt images, new file)."""
    ids = [str(client.images.get(ref).id) for ref in references]
    key = hashlib.sha256(json.dumps([list(references), ids]).encode()).hexdigest()[:16]
    archive = IMAGE_CACHE / f"{key}.tar"
    if not archive.exists():
        IMAGE_CACHE.mkdir(parents=True, exist_ok=True)
        for old in IMAGE_CACHE.glob("*.tar"):
            old.unlink()
        partial = archive.with_suffix(".partial")
        subprocess.run(["docker", "save", "--output", str(partial), *references], check=True, timeout=600)
        partial.rename(archive)
    return archive


@contextlib.contextmanager
def worker_host(client: docker.DockerClient) -> Iterator[RemoteHost]:
    """A namespace with its own dockerd, the grading images loaded from the cached archive.

    Its worker talks to that dockerd through its unix socket (``unix_url``): a grader refuses a
    remote engine, since the grading network's firewall belongs on the engine's own machine.
    """
    archive = image_archive(client)
    with remote_host(client, []) as host:
        with archive.open("rb") as stream:
            host.client.images.load(stream)
        yield host


@contextlib.contextmanager
def grade_worker(
    broker: str,
    name: str,
    folder: Path,
    *,
    netns: str | None = None,
    docker_host: str | None = None,
    visibility_timeout_s: float = 1020.0,
) -> Iterator[Worker]:
    """``portbinding grade-worker`` here or in ``netns``; stopped (with its grading runs) afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"{name}.log"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PORTBINDING_WORKER_DIR": str(folder / name),
    }
    env.pop("DOCKER_HOST", None)
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    command = [
        sys.executable,
        "-m",
        "portbinding",
        "grade-worker",
        "--broker",
        broker,
        "--name",
        name,
        "--visibility-timeout",
        str(visibility_timeout_s),
    ]
    if netns:
        # Another machine's view: its network, and a /sys whose network devices are its own (the
        # grader checks its grading bridge there); the cgroup mounts stay, the sandbox needs them.
        command = [
            "nsenter",
            f"--net=/run/netns/{netns}",
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            OWN_SYSFS_NET,
            "sh",
            *command,
        ]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    worker = Worker(name, process, log)
    try:
        ready = wait_until(
            lambda: " ready." in log.read_text(errors="replace"),
            timeout=60,
            alive=lambda: process.poll() is None,
        )
        assert ready, f"worker {name} did not start:\n{log_tail(log, 30)}"
        yield worker
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=60)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
