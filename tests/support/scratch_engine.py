"""A second, throw-away dockerd for fault tests: its own data root on a small tmpfs.

Killing the course's engine or filling its disk would break every other test, so the fault
tests get their own engine: a real dockerd (Debian's), with a size-capped tmpfs as its data
root, in its own network namespace (no bridge, no iptables rules), reached through its own
socket. Needs root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import requests.exceptions

from portbinding.images import LOCAL_BASE
from portbinding.probe import wait_until


@dataclass
class ScratchEngine:
    """A running scratch dockerd: its client, socket URL and process."""

    root: Path
    url: str
    process: subprocess.Popen[bytes]
    client: docker.DockerClient

    def stop(self, timeout: float = 60) -> None:
        """Stop the daemon the way `service docker stop` does (SIGTERM), and wait until it has exited."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=timeout)

    def kill(self) -> None:
        """Kill the daemon at once (SIGKILL), as a crash would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


def _wait_for_socket(url: str, process: subprocess.Popen[bytes], timeout: float) -> docker.DockerClient:
    clients: list[docker.DockerClient] = []

    def connected() -> bool:
        with contextlib.suppress(
            docker.errors.DockerException, requests.exceptions.RequestException, OSError
        ):
            # The SDK asks the daemon for its API version on construction: retry that too.
            clients.append(docker.DockerClient(base_url=url, timeout=120))
        return bool(clients)

    if wait_until(connected, timeout=timeout, alive=lambda: process.poll() is None, max_interval=0.5):
        return clients[0]
    if process.poll() is not None:
        raise RuntimeError(f"scratch dockerd exited with {process.returncode}")
    raise RuntimeError(f"scratch dockerd did not answer within {timeout} s")


def start_scratch_engine(
    root: Path, *, size_mb: int, exec_root: Path | None = None, netns: Path | None = None
) -> ScratchEngine:
    """Start dockerd with a ``size_mb`` tmpfs data root under ``root``.

    ``exec_root`` (default: a fresh one) holds its socket: give the same one to start the daemon
    again on the same socket. ``netns`` runs it in that existing network namespace (from
    ``ip netns add``) WITH its bridge and iptables rules, so published ports work there; without
    it, the daemon gets a private namespace of its own and no bridge.
    """
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    if not os.path.ismount(data):
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(data)], check=True, timeout=30
        )
    # Unix socket paths must stay short: the socket lives under /tmp, not under ``root``.
    exec_root = exec_root or Path(tempfile.mkdtemp(prefix="pbl-x", dir="/tmp"))
    socket_path = exec_root / "d.sock"
    log = (root / "dockerd.log").open("ab")
    # Never the host's network namespace: a dockerd started with --bridge=none deletes the
    # interface called docker0 -- in a shared namespace, the course engine's bridge. (nsenter
    # execs dockerd, so the process is the daemon itself and SIGTERM reaches it directly.)
    isolated = (
        ["nsenter", f"--net={netns}"] if netns is not None else ["unshare", "--net", "--fork", "--kill-child"]
    )
    network = [] if netns is not None else ["--bridge=none", "--iptables=false", "--ip-masq=false"]
    process = subprocess.Popen(
        [
            *isolated,
            "dockerd",
            "--data-root",
            str(data),
            "--exec-root",
            str(exec_root / "exec"),
            "--pidfile",
            str(exec_root / "d.pid"),
            "--host",
            f"unix://{socket_path}",
            *network,
            "--storage-driver=overlay2",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()  # the daemon has its own copy of the descriptor
    url = f"unix://{socket_path}"
    try:
        client = _wait_for_socket(url, process, timeout=60)
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        raise
    return ScratchEngine(root, url, process, client)


def load_base(source: docker.DockerClient, target: ScratchEngine, reference: str = LOCAL_BASE) -> None:
    """Copy an image (the course's local base by default) into the scratch engine (docker save | load)."""
    stream = source.images.get(reference).save(named=reference)  # exactly this tag
    target.client.images.load(b"".join(stream))


@contextlib.contextmanager
def scratch_engine(*, size_mb: int) -> Iterator[ScratchEngine]:
    """A scratch engine for the duration of a ``with`` block; everything is removed after."""
    root = Path(tempfile.mkdtemp(prefix="pbl-scratch-"))
    engine = None
    try:
        engine = start_scratch_engine(root, size_mb=size_mb)
        yield engine
    finally:
        if engine is not None:
            engine.client.close()
            engine.kill()
        with contextlib.suppress(subprocess.SubprocessError):
            subprocess.run(["umount", "-l", str(root / "data")], timeout=30, check=False)
        shutil.rmtree(root, ignore_errors=True)
