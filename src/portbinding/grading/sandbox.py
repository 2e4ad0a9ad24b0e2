"""One grading sandbox, from the trusted side: its folder, user, cgroups, door, and jail command.

A sandbox holds one kernel -- the process where a submission's code runs. The trusted
grading process (nbgrader, as root) creates it, starts its door, launches the kernel through
``jail`` (which has bubblewrap build the walls), reads what happened afterwards, and removes
every trace: containers and images of its session, cgroups, folder, and the throwaway uid's
claim.

The sandbox folder (``BASE_DIR/<random>``, 0711, root's) holds ``door/`` and ``ipc/`` (the
sandbox uid's, 0700: its door, decoy and ZeroMQ sockets, 0600), ``work/`` (the kernel's
tmpfs, mounted only in the jail's namespace), ``report/`` and the jail's spec (root's alone).

Needs root: cgroups and switching to a throwaway uid do. On a machine where the grader is
not root, ``require_root`` says what to do instead (a dedicated grading VM or container where
it is). Running the kernel as the instructor's own uid in a user namespace was rejected: it
could read and write the instructor's files.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import shutil
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

from portbinding.discovery import find_engine
from portbinding.engine import Engine
from portbinding.errors import EngineUnavailable, PortBindingError
from portbinding.grading import cgroups, seccomp
from portbinding.grading.door import Door, Ledger
from portbinding.grading.jail import DOOR_PATH, HOME
from portbinding.grading.judge import Judge, Limits
from portbinding.grading.protocol import DOOR_ENV
from portbinding.host import apt_install

LOGGER = logging.getLogger(__name__)

BASE_DIR = Path(os.environ.get("PORTBINDING_SANDBOX_DIR", "/var/lib/portbinding-grading"))
SESSION_ENV = "PORTBINDING_GRADING_SESSION"
# Throwaway uids, far above any real account: each live sandbox holds one (a lock file says
# which), so two kernels never share a uid -- they cannot signal, trace or write each other.
UID_FIRST = 1_800_000_000
UID_COUNT = 100_000


class SandboxUnavailable(PortBindingError):
    """This machine cannot sandbox learner code (not root, or a missing tool)."""


@dataclass(frozen=True)
class SandboxLimits:
    """What one kernel may use. The defaults fit the exercises with room to spare."""

    memory_mb: int = 1024
    pids: int = 96
    cpus: float = 1.0  # a CFS quota: one submission never takes the cores the others grade on
    cpu_s: int = 120
    file_mb: int = 64
    work_mb: int = 64
    tmp_mb: int = 64
    shm_mb: int = 16
    open_files: int = 512
    address_space_mb: int = 4096
    copy_limit_mb: int = 8


def require_root() -> None:
    """Raise SandboxUnavailable, saying what is needed, unless sandboxing is possible here."""
    if os.geteuid() != 0:
        raise SandboxUnavailable(
            "Autograding this course runs learners' code in a sandbox (a throwaway user, cgroups, "
            "bubblewrap), and building one needs root; this grader runs as uid " + str(os.geteuid()) + ".",
            hint="grade on a dedicated grading machine, VM or container where the grader runs as root "
            "(sudo portbinding grade ASSIGNMENT); never autograde on a machine whose engine matters to you "
            "without it",
        )
    missing = missing_tools()
    if missing:
        raise SandboxUnavailable(
            f"The grading sandbox needs {' and '.join(missing)}, which this machine lacks.",
            hint="run `portbinding doctor --install` as root on Debian/Ubuntu (it installs them), or "
            "install Debian's bubblewrap and libseccomp2",
        )


# Debian packages that provide what the sandbox needs.
TOOL_PACKAGES = {"bubblewrap (bwrap)": "bubblewrap", "libseccomp": "libseccomp2"}


def missing_tools() -> list[str]:
    """What of bubblewrap and libseccomp is missing here (names as in TOOL_PACKAGES)."""
    missing = []
    if shutil.which("bwrap") is None:
        missing.append("bubblewrap (bwrap)")
    try:
        seccomp.build()
    except seccomp.SeccompUnavailable:
        missing.append("libseccomp")
    return missing


def ensure_tools(*, install: bool) -> list[str]:
    """What is missing for the sandbox; with ``install`` (root, Debian/Ubuntu), install it first."""
    missing = missing_tools()
    if missing and install and os.geteuid() == 0 and shutil.which("apt-get"):
        apt_install(*(TOOL_PACKAGES[name] for name in missing))
        missing = missing_tools()
    return missing


class Sandbox:
    """A sandbox for one kernel; create with ``Sandbox.create`` and always ``close()``."""

    def __init__(self, root: Path, uid: int, uid_lock: IO[str], session: str, limits: SandboxLimits) -> None:
        self.root = root
        self.uid = uid
        self._uid_lock = uid_lock
        self.session = session
        self.limits = limits
        self.ledger = Ledger()
        self.cgroups: list[Path] = []
        self.engine: Engine | None = None
        self.door: Door | None = None
        self.on_violation: Callable[[str], None] | None = None
        self._closed = threading.Event()
        self._final: list[dict[str, Any]] | None = None
        self._final_fault: str | None = None

    # ------------------------------------------------------------------------ lifecycle

    @classmethod
    def create(cls, *, session: str | None = None, limits: SandboxLimits | None = None) -> Sandbox:
        """Folder, uid, cgroups and a started door; raises SandboxUnavailable when impossible."""
        require_root()
        BASE_DIR.mkdir(mode=0o711, parents=True, exist_ok=True)
        os.chmod(BASE_DIR, 0o711)  # the sandbox uid passes through to its own folders, never lists them
        root = BASE_DIR / secrets.token_hex(12)
        root.mkdir(mode=0o711)
        uid, lock = _claim_uid()
        sandbox = cls(root, uid, lock, session or f"grade-{root.name[:10]}", limits or SandboxLimits())
        try:
            sandbox._prepare()
        except BaseException:
            sandbox.close()
            raise
        return sandbox

    def _prepare(self) -> None:
        (self.root / "session").write_text(self.session)  # lets ``reap`` find it if its owner dies
        for name, owner, mode in (("ipc", self.uid, 0o700), ("door", self.uid, 0o700), ("work", 0, 0o700),
                                  ("report", 0, 0o700), ("stage", 0, 0o711)):  # fmt: skip
            (self.root / name).mkdir(mode=mode)
            os.chown(self.root / name, owner, owner)
        try:  # named like the folder: see reap
            self.cgroups = cgroups.make(
                self.root.name, pids=self.limits.pids, memory_mb=self.limits.memory_mb, cpus=self.limits.cpus
            )
        except OSError as error:
            raise SandboxUnavailable(
                f"The grading sandbox could not create its cgroups under {cgroups.ROOT} ({error}); it needs "
                "them to limit processes and memory.",
                hint="grade as root on a machine with the pids and memory cgroup controllers "
                "(any Docker host has them)",
            ) from error
        try:
            client, info = find_engine()
        except EngineUnavailable as error:
            raise SandboxUnavailable(
                f"The grading door has no engine to run checks on: {error.message}", hint=error.hint
            ) from error
        self.engine = Engine(client, info, session=self.session, owner="grader")
        self.ledger = _AlertingLedger(self)
        self.door = Door(
            Judge(self.engine, limits=Limits()),
            socket_path=self.door_path,
            decoy_path=self.root / "door" / "engine.sock",
            ledger=self.ledger,
            peer_uid=self.uid,
        ).start()

    def close(self) -> list[dict[str, Any]]:
        """Stop the door, remove the session's containers and images, cgroups, folder; return violations."""
        if self._closed.is_set():
            return self._final or []
        self._closed.set()
        if self.door is not None:
            self.door.close()
        violations = self.violations()
        fault = self.fault()
        if fault is None and self.engine is not None and _engine_failed(self.ledger, self.engine):
            fault = "the container engine stopped answering while this notebook's checks ran"
        if self.engine is not None:
            sweep(self.engine)
            self.engine.client.close()
        for group in self.cgroups:
            cgroups.remove(group)
        shutil.rmtree(self.root, ignore_errors=True)  # fd-based: symlinks inside are not followed
        with contextlib.suppress(OSError):
            self._uid_lock.close()
        self._final, self._final_fault = violations, fault
        return violations

    # ------------------------------------------------------------------------ the kernel

    @property
    def door_path(self) -> Path:
        """The door's socket on the host (inside the sandbox it is ``jail.DOOR_PATH``)."""
        return self.root / "door" / "door.sock"

    @property
    def ipc_prefix(self) -> str:
        """Where the kernel's ZeroMQ sockets live (Unix sockets: the kernel has no usable network)."""
        return str(self.root / "ipc" / "kernel")

    def jail_command(
        self,
        kernel_argv: list[str],
        *,
        connection_file: str,
        copy: dict[str, Any] | None,
        env: dict[str, str],
    ) -> list[str]:
        """The command that starts ``kernel_argv`` inside this sandbox (see portbinding.grading.jail).

        ``copy``: ``{"source": folder, "check_against": [folders]}`` -- the submission's files
        for the work folder, each also a regular file of the same size in one of the others.
        """
        spec = {
            "uid": self.uid, "gid": self.uid, "root": str(self.root), "connection_file": connection_file,
            "argv": kernel_argv, "env": env, "expose": _interpreter_paths(),
            "decoys": _engine_sockets(self.engine),
            "work_mb": self.limits.work_mb, "work_inodes": 4096, "tmp_mb": self.limits.tmp_mb,
            "shm_mb": self.limits.shm_mb,
            "copy": None if copy is None else {**copy, "limit_bytes": self.limits.copy_limit_mb * 2**20},
            "report": str(self.root / "report" / "jail.json"),
            "kernel_log": str(self.root / "report" / "kernel.log"),
            "cgroups": [str(group) for group in self.cgroups], "pids_max": self.limits.pids,
            "pids_events": cgroups.events_file(self.cgroups, "pids", "pids.events"),
            "oom_events": cgroups.events_file(self.cgroups, "memory", "memory.oom_control", "memory.events"),
            "memory_mb": self.limits.memory_mb, "rlimits": {
                "NPROC": self.limits.pids + 16, "NOFILE": self.limits.open_files,
                "FSIZE": self.limits.file_mb * 2**20, "CPU": self.limits.cpu_s,
                "AS": self.limits.address_space_mb * 2**20, "CORE": 0},
        }  # fmt: skip
        spec_path = self.root / "report" / "spec.json"
        spec_path.write_text(json.dumps(spec))
        os.chmod(spec_path, 0o600)
        return [sys.executable, "-I", "-m", "portbinding.grading.jail", str(spec_path)]

    def kernel_env(self, inherited: dict[str, str]) -> dict[str, str]:
        """A clean environment: nothing of the grader's (tokens, DOCKER_HOST) reaches learner code."""
        env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
            "HOME": HOME, "USER": "learner", "LOGNAME": "learner", "LANG": "C.UTF-8",
            "IPYTHONDIR": f"{HOME}/.ipython", "JUPYTER_RUNTIME_DIR": f"{HOME}/.runtime",
            "JUPYTER_DATA_DIR": f"{HOME}/.jupyter", "MPLCONFIGDIR": f"{HOME}/.matplotlib",
            "MPLBACKEND": "Agg", "PYDEVD_DISABLE_FILE_VALIDATION": "1", DOOR_ENV: DOOR_PATH,
            # bubblewrap's init (PID 1 of the sandbox) is the kernel's parent; ipykernel does not poll PID 1.
            "JPY_PARENT_PID": "1",
        }  # fmt: skip
        for name in ("NBGRADER_EXECUTION", "JPY_SESSION_NAME"):
            if name in inherited:
                env[name] = inherited[name]
        return env

    # ------------------------------------------------------------------------ afterwards

    def violations(self) -> list[dict[str, Any]]:
        """Every rule the kernel broke: engine access (door), limits (jail report, cgroup counters)."""
        if self._final is not None:
            return list(self._final)
        found = self.ledger.violations() + [
            v for v in self._report().get("violations", []) if isinstance(v, dict)
        ]
        seen: set[str] = set()
        unique = []
        for item in found:
            if item.get("code") not in seen:
                seen.add(str(item.get("code")))
                unique.append({"code": str(item.get("code")), "message": str(item.get("message"))})
        return unique

    def fault(self) -> str | None:
        """The grader's own failure, if any: the sandbox could not be built, or its door broke.

        Never the notebook's doing, so never its zero: the submission must be graded again.
        """
        if self._final is not None:
            return self._final_fault
        reported = self._report().get("fault")
        if reported:
            return str(reported)
        return self.door.fault if self.door is not None else None

    def _report(self) -> dict[str, Any]:
        with contextlib.suppress(OSError, ValueError):
            data = json.loads((self.root / "report" / "jail.json").read_text())
            if isinstance(data, dict):
                return data
        return {}


def _engine_failed(ledger: Ledger, engine: Engine) -> bool:
    """A check said "grader_error" and the engine does not answer now: the grader's fault, not the notebook's.

    A notebook cannot fake this: the verdicts are the door's, and the ping is the grader's own.
    """
    if not any(check["cause"] == "grader_error" for check in ledger.checks()):
        return False
    try:
        engine.client.ping()
    except Exception:  # any failure to answer is the engine's
        return True
    return False


class _AlertingLedger(Ledger):
    """A ledger that also tells the sandbox at once when a rule is broken (to stop the kernel early)."""

    def __init__(self, sandbox: Sandbox) -> None:
        super().__init__()
        self._sandbox = sandbox

    def violation(self, code: str, message: str) -> None:
        super().violation(code, message)
        callback = self._sandbox.on_violation
        if callback is not None:
            callback(code)


def reap(session: str) -> int:
    """Remove the sandboxes of ``session`` whose owner died (a grading killed at its time limit).

    Killing a sandbox's cgroup members kills its jail, PID 1 of its namespace, and with it
    every process inside. Returns how many sandboxes were removed.
    """
    removed = 0
    for root in BASE_DIR.iterdir() if BASE_DIR.is_dir() else []:
        try:
            owner = (root / "session").read_text()
        except OSError:
            continue
        if owner != session:
            continue
        for group in cgroups.paths(root.name):
            cgroups.remove(group)
        shutil.rmtree(root, ignore_errors=True)
        removed += 1
    return removed


def sweep(engine: Engine) -> list[str]:
    """Remove every container and image labelled with ``engine``'s session; return what went."""
    removed = []
    with contextlib.suppress(EngineUnavailable):
        removed = engine.cleanup(session=engine.session)
    try:
        images = engine.client.images.list(filters={"label": f"portbinding.session={engine.session}"})
    except Exception as error:  # the engine may be gone; nothing more to sweep then
        LOGGER.warning("could not list the session's images: %s", error)
        return removed
    for image in images:
        with contextlib.suppress(Exception):
            engine.client.images.remove(image.id, force=True)
            removed.append(str(image.id)[:19])
    return removed


# ----------------------------------------------------------------------------------- helpers


def _claim_uid() -> tuple[int, IO[str]]:
    locks = BASE_DIR / "uids"
    locks.mkdir(mode=0o700, exist_ok=True)
    busy = _uids_in_use()
    # The lowest free number: lock files stay as few as the most sandboxes ever alive at once.
    # Reuse is safe: a closed sandbox leaves no process and no file; a uid that still has a
    # process (a sandbox whose grader died before closing it) is skipped until it has none.
    for number in range(UID_COUNT):
        if UID_FIRST + number in busy:
            continue
        handle = (locks / f"{number}.lock").open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        return UID_FIRST + number, handle
    raise SandboxUnavailable(
        "Every throwaway grading uid is in use.", hint="wait for running gradings to end"
    )


def _uids_in_use() -> set[int]:
    """The grading uids that own a process on this machine right now."""
    found = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError, StopIteration, ValueError, IndexError):
            line = next(line for line in status.read_text().splitlines() if line.startswith("Uid:"))
            uid = int(line.split()[1])
            if UID_FIRST <= uid < UID_FIRST + UID_COUNT:
                found.add(uid)
    return found


def _interpreter_paths() -> list[tuple[str, str]]:
    """What the kernel must read besides /usr: the interpreter, the venv, where portbinding lives.

    As (real path on the host, path inside the sandbox) pairs: a path reached through a
    symlink is bound at both names, so the kernel command's own paths work inside.
    """
    import portbinding
    from portbinding.grading.jail import SYSTEM_DIRS

    found: dict[str, str] = {}
    for path in (sys.base_prefix, sys.prefix, str(Path(portbinding.__file__).parents[1])):
        for name in {os.path.abspath(path), os.path.realpath(path)}:
            if not any(name == d or name.startswith(d + "/") for d in SYSTEM_DIRS):
                found.setdefault(name, os.path.realpath(path))
    # A folder inside another one is reached through it: bind only the outermost ones.
    outer = [n for n in found if not any(n != o and n.startswith(o + "/") for o in found)]
    return [(found[name], name) for name in sorted(outer)]


def _engine_sockets(engine: Engine | None) -> list[str]:
    """Where engine sockets would be inside the sandbox: the defaults, plus the engine in use."""
    found = ["/run/docker.sock", "/run/podman/podman.sock", "/run/containerd/containerd.sock"]
    if engine is not None and engine.info.url.startswith("unix://"):
        path = os.path.realpath(urlparse(engine.info.url).path)
        if path not in found:
            found.append(path)
    return found
