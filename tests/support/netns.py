"""A "remote host" with a real Docker engine on it: a network namespace reached over a veth pair.

The remote-engine tests need an engine whose published ports open on another host's address,
named by DOCKER_HOST as tcp:// and ssh:// the way a learner would name a server. A network
namespace plays that host: a veth pair joins it to this machine on a private /30, a second
dockerd runs inside it (its own bridge and iptables rules, data root on tmpfs) listening on its
unix socket and on tcp://<address>:2375, and an sshd inside it makes ssh://root@<address> reach
the same daemon. The course engine, its docker0 and its iptables rules are never touched, and
no packet leaves the pair. Needs root.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import requests.exceptions

from portbinding.host import apt_install, log_tail
from portbinding.probe import wait_until
from tests.support.scratch_engine import _wait_for_socket

SSHD = Path("/usr/sbin/sshd")
TCP_PORT = 2375


@dataclass(frozen=True)
class RemoteHost:
    """The namespace's address, its engine (through its own socket) and an ssh-ready HOME."""

    netns: str
    address: str
    client: docker.DockerClient  # the second engine via its unix socket: set-up and checks
    home: Path  # a HOME whose .ssh holds the key and known_hosts for ssh://root@<address>
    unix_url: str = ""  # that socket, for a process run inside the namespace ("local" there)

    @property
    def tcp_url(self) -> str:
        return f"tcp://{self.address}:{TCP_PORT}"

    @property
    def ssh_url(self) -> str:
        return f"ssh://root@{self.address}"


def _run(*command: str) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


def _free_subnet() -> int:
    """A third octet N with 10.233.N.0/30 on no interface yet (several runs may share a machine)."""
    used = _run("ip", "-4", "-o", "addr", "show")
    for _ in range(50):
        octet = random.randrange(256)
        if f" 10.233.{octet}." not in used:
            return octet
    raise RuntimeError("no free 10.233.N.0/30 subnet")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (dockerd then stops its containers and containerd), SIGKILL the group if it hangs."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # anything of its session left behind
    process.wait(timeout=30)


def _spawn(netns: str, command: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            # nsenter, not `ip netns exec`: that also remounts /sys, hiding the cgroup mounts dockerd needs.
            ["nsenter", f"--net=/run/netns/{netns}", *command],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _keygen(path: Path) -> str:
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "portbinding-test", "-f", str(path))
    return path.with_suffix(".pub").read_text().strip()


def _accepts(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def remote_host(
    source: docker.DockerClient, images: Sequence[str], *, dockerd_args: Sequence[str] = ()
) -> Iterator[RemoteHost]:
    """The namespace, its dockerd (with ``images`` copied from ``source``) and its sshd.

    ``dockerd_args`` are added to the daemon's command line (``--userland-proxy=false``, ...).

    Every piece registers its own teardown as soon as it exists, so a failure half-way (or in
    the test) still removes all of it: processes, tmpfs, veth and namespace.
    """
    with contextlib.ExitStack() as stack:
        root = Path(tempfile.mkdtemp(prefix="pbl-remote-"))  # short: unix socket paths are limited
        stack.callback(shutil.rmtree, root, ignore_errors=True)
        octet = _free_subnet()
        netns, outside, inside = f"pbl-remote-{octet}", f"pblr{octet}h", f"pblr{octet}n"
        local, address = f"10.233.{octet}.1", f"10.233.{octet}.2"

        _run("ip", "netns", "add", netns)
        stack.callback(subprocess.run, ["ip", "netns", "del", netns], timeout=30, check=False)
        stack.callback(_kill_everything_in, netns)
        _run("ip", "link", "add", outside, "type", "veth", "peer", "name", inside, "netns", netns)
        # Deleting the namespace takes its end of the pair along; this end goes explicitly too.
        stack.callback(subprocess.run, ["ip", "link", "del", outside], timeout=30, check=False)
        _run("ip", "addr", "add", f"{local}/30", "dev", outside)
        _run("ip", "link", "set", outside, "up")
        _run("ip", "-n", netns, "addr", "add", f"{address}/30", "dev", inside)
        _run("ip", "-n", netns, "link", "set", inside, "up")
        _run("ip", "-n", netns, "link", "set", "lo", "up")

        data = root / "data"
        data.mkdir()
        _run("mount", "-t", "tmpfs", "-o", "size=1024m", "tmpfs", str(data))
        stack.callback(subprocess.run, ["umount", "-l", str(data)], timeout=30, check=False)
        unix_url = f"unix://{root}/d.sock"
        dockerd = _spawn(
            netns,
            [
                "dockerd",
                "--data-root",
                str(data),
                "--exec-root",
                str(root / "exec"),
                "--pidfile",
                str(root / "d.pid"),
                "--host",
                unix_url,
                "--host",
                f"tcp://{address}:{TCP_PORT}",
                "--storage-driver=overlay2",
                # Plain tcp:// on purpose (only this machine can reach the pair); saying so explicitly
                # skips the 15 s pause dockerd otherwise makes to warn about an unencrypted API.
                "--tls=false",
                *dockerd_args,
            ],
            root / "dockerd.log",
        )
        stack.callback(_stop, dockerd)
        try:
            client = _wait_for_socket(unix_url, dockerd, timeout=60)
        except RuntimeError as exc:  # the log goes with the temp dir: say what it said
            raise RuntimeError(f"{exc}:\n{log_tail(root / 'dockerd.log', 15)}") from exc
        stack.callback(client.close)
        stack.callback(_remove_all_containers, client)  # a backstop: the tests' own cleanup comes first
        for image in images:
            # Streamed from one engine into the other, never held in memory whole.
            client.images.load(source.images.get(image).save(named=image))

        if not SSHD.exists():
            apt_install("openssh-server")
        home = root / "home"
        (home / ".ssh").mkdir(parents=True, mode=0o700)
        user_key = _keygen(home / ".ssh" / "id_ed25519")
        host_key = _keygen(root / "host_key")
        (home / ".ssh" / "known_hosts").write_text(f"{address} {host_key}\n")
        (root / "authorized_keys").write_text(user_key + "\n")
        (root / "sshd_config").write_text(
            f"ListenAddress {address}\n"
            f"HostKey {root / 'host_key'}\n"
            f"PidFile {root / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {root / 'authorized_keys'}\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM no\n"
            # The keys live under /tmp, which is world-writable: sshd's ownership check would refuse them.
            "StrictModes no\n"
            # `docker system dial-stdio` runs on the "remote" side, on this same filesystem: without
            # this it would reach the course engine's /var/run/docker.sock instead of this one.
            f"SetEnv DOCKER_HOST={unix_url}\n"
        )
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # Debian's sshd insists on it
        sshd = _spawn(netns, [str(SSHD), "-D", "-e", "-f", str(root / "sshd_config")], root / "sshd.log")
        stack.callback(_stop, sshd)
        listening = wait_until(lambda: _accepts(address, 22), timeout=20, alive=lambda: sshd.poll() is None)
        assert listening, f"sshd did not listen on {address}:22:\n{log_tail(root / 'sshd.log', 15)}"
        yield RemoteHost(netns, address, client, home, unix_url)


def _kill_everything_in(netns: str) -> None:
    """SIGKILL whatever still runs in the namespace, each by its pid, before the namespace goes.

    sshd's per-connection processes start their own sessions, so killing the listener leaves
    them; with the veth gone no FIN ever reaches them and they (and the namespace) would live on.
    """
    for pid in _run("ip", "netns", "pids", netns).split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)


def _remove_all_containers(client: docker.DockerClient) -> None:
    with contextlib.suppress(docker.errors.DockerException, requests.exceptions.RequestException):
        for container in client.containers.list(all=True):
            container.remove(force=True)
