"""Rootless Podman for the course: a non-root user's ``podman system service``, with the images.

Many learners have Podman, not Docker, and run it rootless: containers belong to an ordinary
user, published ports are forwarded by Podman's ``rootlessport`` process instead of
docker-proxy and iptables, and the container's own IP lives in a private network namespace.
The course talks to Podman through its Docker-compatible API socket, so the same code runs on
both; this module sets such an engine up on a Debian machine (as root, once) and says where its
socket is:

    python -m portbinding.podman          # prints unix:///run/user/UID/podman/podman.sock
    DOCKER_HOST=$(python -m portbinding.podman) portbinding doctor

``ensure_podman()`` installs Debian's podman, uidmap and slirp4netns when missing, creates a
dedicated user (``pblpodman``) with subordinate uid/gid ranges, makes /dev/net/tun usable,
starts the API service as that user, and copies the course images over from Docker
(``docker save | podman load``) so the same references exist on both engines. Each step is
skipped when it is already done, so a second call takes well under a second.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from portbinding import settings
from portbinding.discovery import DEFAULT_SOCKET
from portbinding.errors import PodmanUnavailable, PortBindingError
from portbinding.host import apt_install, start_service
from portbinding.podman_images import copy_images, stale_references_between
from portbinding.probe import wait_until

LOGGER = logging.getLogger(__name__)

PACKAGES = ("podman", "uidmap", "slirp4netns")
# Serialises set-up between processes (two test runs, a test run and a lesson) on one machine.
LOCK_FILE = Path("/run/portbinding-podman.lock")
TUN = Path("/dev/net/tun")
TUN_MAJOR, TUN_MINOR = 10, 200
# The size Debian's useradd gives each user (SUB_UID_COUNT): enough for any image's uids.
SUBID_COUNT = 65536
SUBID_FIRST = 100000
# What the service and `podman load` see: nothing of root's environment leaks in (no DOCKER_HOST).
USER_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
# Without it Podman may settle on vfs, which copies the whole image for every container:
# 2-4 s per `create` and hundreds of MB each. Native rootless overlay needs Linux 5.13+.
STORAGE_CONF = """# Written by portbinding.podman for the course's rootless Podman.
[storage]
driver = "overlay"
"""
# Each exec through the API keeps a conmon pair alive this long after the command ends (Podman's
# default is 300 s). The course execs often (listeners, probes from inside): with the default,
# a test run left 700 conmon processes waiting at once.
CONTAINERS_CONF = """# Written by portbinding.podman for the course's rootless Podman.
[engine]
exit_command_delay = 30
"""

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True)
class PodmanAccount:
    """The user the rootless engine runs as, and where its files live."""

    name: str
    uid: int
    gid: int
    home: Path

    @property
    def runtime_dir(self) -> Path:
        """XDG_RUNTIME_DIR: Podman keeps its socket, pause process and locks here."""
        return Path(f"/run/user/{self.uid}")

    @property
    def socket_path(self) -> Path:
        # The path Podman's own systemd socket unit uses, so discovery.candidates() finds it too.
        return self.runtime_dir / "podman" / "podman.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def pid_file(self) -> Path:
        """Where the pid of the service this module started is kept, so it can be stopped."""
        return self.runtime_dir / "portbinding-podman.pid"

    @property
    def storage_conf(self) -> Path:
        return self.home / ".config" / "containers" / "storage.conf"

    @property
    def containers_conf(self) -> Path:
        return self.home / ".config" / "containers" / "containers.conf"

    def configured(self) -> bool:
        """Whether this module's configuration files are in place (False if they cannot be read)."""
        return self.storage_conf.exists() and self.containers_conf.exists()

    def environment(self) -> dict[str, str]:
        """A clean login-like environment for the user (rootless Podman reads HOME and XDG_*)."""
        return {
            "HOME": str(self.home),
            "USER": self.name,
            "LOGNAME": self.name,
            "PATH": USER_PATH,
            "LANG": "C.UTF-8",
            "XDG_RUNTIME_DIR": str(self.runtime_dir),
        }

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run as this user (root only): setpriv drops to its uid, gid and groups."""
        env = [f"{key}={value}" for key, value in self.environment().items()]
        return [
            "setpriv",
            f"--reuid={self.uid}",
            f"--regid={self.gid}",
            "--init-groups",
            "env",
            "-i",
            *env,
            *argv,
        ]


def account(user: str | None = None) -> PodmanAccount | None:
    """The Podman user's account (``settings.podman_user()`` by default), or None if it does not exist."""
    try:
        entry = pwd.getpwnam(user or settings.podman_user())
    except KeyError:
        return None
    return PodmanAccount(entry.pw_name, entry.pw_uid, entry.pw_gid, Path(entry.pw_dir))


def ping(url: str, *, timeout: float = 2.0) -> bool:
    """Whether an engine answers ``GET /_ping`` on the unix socket of ``url`` right now."""
    path = url.removeprefix("unix://")
    reply = b""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: podman\r\n\r\n")
            while len(reply) < 4096:
                chunk = sock.recv(1024)
                if not chunk:
                    break
                reply += chunk
    except OSError:  # absent, refused, permission denied, timed out: it does not answer
        return False
    status_line = reply.split(b"\r\n", 1)[0]
    return status_line.startswith(b"HTTP/1.") and b" 200 " in status_line + b" "


def ensure_podman(
    *,
    progress: Progress = _quiet,
    user: str | None = None,
    docker_url: str = DEFAULT_SOCKET,
    images: bool = True,
    timeout: float = 60.0,
) -> str:
    """A rootless Podman API socket with the course images on it; returns its DOCKER_HOST URL.

    Set-up needs root; once it is done, any user who may open the socket gets the URL at once.
    ``docker_url`` is the Docker engine the images are copied from (the default socket, not
    DOCKER_HOST, which may already point at Podman). ``timeout`` bounds the service start.
    ``user`` defaults to ``settings.podman_user()``.
    """
    user = user or settings.podman_user()
    existing = account(user)
    # Only root can read the user's home to check the storage set-up; others take it as done.
    configured = existing is not None and (os.geteuid() != 0 or existing.configured())
    if existing is not None and configured and ping(existing.url):
        stale = stale_references_between(docker_url, existing.url) if images else []
        if stale == []:
            return existing.url
        if stale is None and os.geteuid() != 0:
            return existing.url  # Docker is not ours to ask (the usual case for the Podman user)
    if os.geteuid() != 0:
        raise PodmanUnavailable(
            f"Rootless Podman for the course (user {user!r}) is not set up, not running, or lacks the "
            "current course images, and setting it up needs root.",
            hint="run `sudo .venv/bin/python -m portbinding.podman` once; it prints the DOCKER_HOST "
            "URL to use",
        )
    with _setup_lock(timeout=900):
        if any(shutil.which(command) is None for command in ("podman", "newuidmap", "slirp4netns")):
            if shutil.which("apt-get") is None:
                raise PodmanUnavailable(
                    "Podman (with newuidmap and slirp4netns) is not installed, and this is not a "
                    "Debian-like system where the course could install it.",
                    hint=f"install {', '.join(PACKAGES)} with your package manager, then run this again",
                )
            progress(f"Installing Debian's {', '.join(PACKAGES)} (about a minute)...")
            apt_install(*PACKAGES)
        found = _ensure_user(user, progress)
        _ensure_subids(found, progress)
        _ensure_tun()
        _ensure_runtime_dir(found)
        _ensure_config(found, progress)
        if not ping(found.url):
            progress(f"Starting `podman system service` as {found.name} (log: {settings.podman_log()})...")
            _start_service(found, timeout=timeout)
        if images:
            copy_images(docker_url, found.url, as_user=found.command, cwd=found.home, progress=progress)
    return found.url


# ------------------------------------------------------------------------------ the account


def _ensure_user(user: str, progress: Progress) -> PodmanAccount:
    found = account(user)
    if found is not None:
        return found
    progress(f"Creating the user {user!r} that runs rootless Podman...")
    options = ["--create-home", "--shell", "/usr/sbin/nologin", "--user-group"]
    _run(
        ["useradd", *options, "--comment", "Port Binding Lab rootless Podman", user],
        what=f"create the user {user}",
    )
    created = account(user)
    if created is None:
        raise PodmanUnavailable(f"useradd reported success, but there is no user {user!r}.")
    return created


def _ensure_subids(found: PodmanAccount, progress: Progress) -> None:
    """Give the user subordinate uid and gid ranges: an image's uids other than 0 map into them.

    Without them Podman runs only images whose every file belongs to root ("insufficient UIDs or
    GIDs available in user namespace" otherwise).
    """
    for path, option in ((Path("/etc/subuid"), "--add-subuids"), (Path("/etc/subgid"), "--add-subgids")):
        entries = _subid_entries(path)
        if any(name in (found.name, str(found.uid)) for name, _, _ in entries):
            continue
        start = max([SUBID_FIRST, *(first + count for _, first, count in entries)])
        progress(f"Giving {found.name} the range {start}-{start + SUBID_COUNT - 1} in {path}...")
        _run(
            ["usermod", option, f"{start}-{start + SUBID_COUNT - 1}", found.name],
            what=f"add a subordinate id range to {path}",
        )


def _subid_entries(path: Path) -> list[tuple[str, int, int]]:
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    entries = []
    for line in lines:
        fields = line.strip().split(":")
        if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
            entries.append((fields[0], int(fields[1]), int(fields[2])))
    return entries


def _ensure_tun() -> None:
    """/dev/net/tun, readable and writable by everyone: slirp4netns builds the network on it.

    Minimal systems and containers often lack the node; creating it needs root and a device
    cgroup that allows it, which an unprivileged container does not have.
    """
    try:
        if not TUN.exists():
            TUN.parent.mkdir(parents=True, exist_ok=True)
            os.mknod(TUN, stat.S_IFCHR | 0o666, os.makedev(TUN_MAJOR, TUN_MINOR))
        if not stat.S_ISCHR(TUN.stat().st_mode):
            raise PodmanUnavailable(
                f"{TUN} exists but is not a character device.",
                hint=f"remove it and run this again (it becomes: mknod {TUN} c {TUN_MAJOR} {TUN_MINOR})",
            )
        if stat.S_IMODE(TUN.stat().st_mode) & 0o666 != 0o666:
            os.chmod(TUN, 0o666)
        # Opening it proves more than the node: the device cgroup may still forbid it.
        os.close(os.open(TUN, os.O_RDWR))
    except OSError as exc:
        raise PodmanUnavailable(
            f"Rootless Podman needs {TUN} (its network runs through slirp4netns), and it cannot be "
            f"made usable here: {exc.strerror or exc}.",
            hint="on a VM or laptop, load the tun module (`modprobe tun`); inside a container, start "
            "it with `--device /dev/net/tun`",
        ) from exc


def _ensure_runtime_dir(found: PodmanAccount) -> None:
    """/run/user/UID as a login would make it (no systemd-logind here to do it): 0700, the user's."""
    for directory in (found.runtime_dir, found.runtime_dir / "podman"):
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chown(directory, found.uid, found.gid)
        os.chmod(directory, 0o700)


def _ensure_config(found: PodmanAccount, progress: Progress) -> None:
    """Write the user's Podman configuration; a store made before with another driver is reset.

    A file already there -- ours from an earlier run, or the administrator's choice -- is left
    alone.
    """
    for directory in (found.home / ".config", found.storage_conf.parent):
        directory.mkdir(mode=0o755, exist_ok=True)
        os.chown(directory, found.uid, found.gid)
    if not found.containers_conf.exists():
        found.containers_conf.write_text(CONTAINERS_CONF)
        os.chown(found.containers_conf, found.uid, found.gid)
        if ping(found.url):
            _stop_service(found)  # it reads containers.conf as it starts: started again below
    if found.storage_conf.exists():
        return
    found.storage_conf.write_text(STORAGE_CONF)
    os.chown(found.storage_conf, found.uid, found.gid)
    if not (found.home / ".local" / "share" / "containers" / "storage").exists():
        return
    # Podman refuses to open a store made with another driver; this user exists for the course
    # only, so its store is emptied (the images are copied again afterwards).
    progress(f"Resetting {found.name}'s Podman storage to use overlay (it was made with another driver)...")
    _stop_service(found)
    _run(
        found.command(["podman", "system", "reset", "--force"]), what="reset Podman's storage", cwd=found.home
    )


# ------------------------------------------------------------------------------ the service


def _stop_service(found: PodmanAccount, *, timeout: float = 30.0) -> None:
    """Stop the service this module started (SIGTERM), waiting until its socket goes quiet.

    Rootless Podman re-executes itself inside the user namespace: the process we started waits
    for a child that is the real service. Both are in the session we made, so the whole process
    group is signalled (the containers' conmon processes have sessions of their own and live on).
    """
    try:
        group = int(found.pid_file.read_text().strip())
    except (OSError, ValueError):
        group = None
    if group is None:
        if ping(found.url):
            raise PodmanUnavailable(
                f"A Podman service that this course did not start answers on {found.socket_path}.",
                hint=f"stop it (it runs as {found.name}), then run this again",
            )
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    # Polling: the service gives no other sign that it has stopped.
    if not wait_until(lambda: not ping(found.url, timeout=1.0), timeout=timeout, max_interval=0.1):
        raise PodmanUnavailable(
            f"The Podman service (process group {group}) did not stop within {timeout:.0f} s.",
            hint=f"stop it yourself (`kill -TERM -{group}`), then run this again",
        )
    found.pid_file.unlink(missing_ok=True)


def _start_service(found: PodmanAccount, *, timeout: float) -> None:
    """Start the API service as the user, in its own session (it outlives us), and wait for it."""
    with contextlib.suppress(FileNotFoundError):
        found.socket_path.unlink()  # a socket left by a service that died: nothing answers on it
    start_service(
        found.command(["podman", "system", "service", "--time=0", found.url]),
        name="`podman system service`",
        log=settings.podman_log(),
        answers=lambda: ping(found.url, timeout=1.0),
        timeout=timeout,
        exit_hint=f"read {settings.podman_log()}; `podman info` as {found.name} shows what it lacks",
        cwd=found.home,
        # A new session, so this pid is also the process group of the service and its re-executed
        # child: recorded before the wait, so a service slow to answer can still be stopped.
        started=lambda process: found.pid_file.write_text(f"{process.pid}\n"),
        error=PodmanUnavailable,
    )


# ------------------------------------------------------------------------------ helpers


@contextlib.contextmanager
def _setup_lock(*, timeout: float) -> Iterator[None]:
    """Hold an exclusive lock on LOCK_FILE, polling for it until ``timeout`` seconds passed."""
    with LOCK_FILE.open("a") as handle:

        def locked() -> bool:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        # flock has no timeout of its own: poll.
        if not wait_until(locked, timeout=timeout, max_interval=0.2):
            raise PodmanUnavailable(
                f"Another process has been setting up Podman for {timeout:.0f} s (it holds {LOCK_FILE}).",
                hint="wait for it to finish, or stop it, then run this again",
            )
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(argv: list[str], *, what: str, cwd: Path | None = None) -> None:
    LOGGER.debug("podman set-up: %s", argv)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=cwd, check=False)
    if result.returncode != 0:
        raise PodmanUnavailable(
            f"Could not {what}: `{' '.join(argv)}` exited {result.returncode}: "
            f"{(result.stderr or result.stdout).strip()[:300]}",
            hint="fix what the message names, then run this again",
        )


def main() -> int:
    """Set up (or just find) rootless Podman; print its DOCKER_HOST URL on stdout."""
    try:
        url = ensure_podman(progress=lambda message: print(message, file=sys.stderr))
    except PortBindingError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 3  # the CLI's "no container engine" exit code
    print(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
