"""The start of one grading kernel, as root: bubblewrap builds its walls, this process watches them.

The kernel manager starts ``python -I -m portbinding.grading.jail SPEC.json`` (as root) in
place of the kernel. This process

1. takes a private mount namespace (whatever it mounts goes with it), mounts a size-capped
   tmpfs as the kernel's work folder and copies the submission's files into it
   (``safecopy``: regular files only, each cross-checked against the submitted folder), and
   binds the paths the kernel needs but its throwaway uid may not reach (a checkout in a 0700
   folder) under the sandbox folder -- the two things bubblewrap, run without privileges,
   cannot do;
2. writes the kernel's connection file, a minimal /etc, and compiles the seccomp filter
   (``seccomp``);
3. forks a child that joins the sandbox's cgroups, sets rlimits, drops to the throwaway uid
   with no groups and execs bubblewrap, which builds the kernel's world from nothing (see
   ``bwrap_command``): new user, mount, PID, network, IPC, UTS and cgroup namespaces; /usr,
   the venv and the course package read-only; its own /proc, a minimal /dev, private /tmp and
   /run, the door and the decoy, the work folder; no /sys, no home, no course, no other
   sandbox; no new user namespaces; the seccomp filter;
4. watches from outside (it stays root, in the host's PID namespace): the cgroup counters, the
   work folder's free space and the kernel's log, and kills the sandbox the moment a limit is
   hit, recording which in a report only root can write.

bubblewrap runs as the throwaway uid, so everything the kernel makes is that uid's, and
nothing in the sandbox is root. Nothing here trusts the kernel: it runs before the kernel
exists or watches it from outside.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portbinding.grading import safecopy, seccomp

# Where things are inside the sandbox (the same for every sandbox: nothing names the host's paths).
HOME = "/home/learner"
KERNEL_DIR = "/run/kernel"  # the kernel's ZeroMQ sockets and connection file
DOOR_DIR = "/run/grading"  # door.sock and the decoy engine.sock
DOOR_PATH = f"{DOOR_DIR}/door.sock"
# The machine's own runtime: bound read-only where it exists, recreated when it is a symlink
# (/lib -> usr/lib on merged-/usr systems).
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")

CLONE_NEWNS = 0x00020000
MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 0x2, 0x4, 0x1000, 0x4000, 0x40000
PR_SET_NO_NEW_PRIVS = 38
WATCH_INTERVAL_S = 0.25
MAX_LOG_BYTES = 4 * 2**20  # the kernel's own stdout/stderr; cell output goes over ZeroMQ
RLIMITS = {
    "NPROC": resource.RLIMIT_NPROC,
    "NOFILE": resource.RLIMIT_NOFILE,
    "FSIZE": resource.RLIMIT_FSIZE,
    "CPU": resource.RLIMIT_CPU,
    "AS": resource.RLIMIT_AS,
    "CORE": resource.RLIMIT_CORE,
}
_LIBC = ctypes.CDLL(None, use_errno=True)


def main(argv: list[str]) -> int:
    spec: dict[str, Any] = json.loads(Path(argv[1]).read_text())
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # interrupts are for the kernel, in our process group
    report = Report(Path(spec["report"]))
    try:
        command, keep = _prepare(spec)
    except (OSError, ValueError, KeyError, seccomp.SeccompUnavailable) as error:
        report.fault(f"The grading sandbox could not be set up: {error}")
        return 70
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGCHLD])  # waited for below
    child = os.fork()
    if child == 0:
        _become_sandbox(spec, command, keep)  # never returns
    for fd in keep:
        os.close(fd)
    return _watch(child, spec, report)


class Report:
    """What the jail saw, written where only root can write (the kernel cannot forge it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {"violations": [], "exit": None, "fault": None}

    def violation(self, code: str, message: str) -> None:
        if all(v["code"] != code for v in self.data["violations"]):
            self.data["violations"].append({"code": code, "message": message})
            self.write()

    def fault(self, message: str) -> None:
        """The grader's own failure (the sandbox could not be built): not the notebook's doing."""
        self.data["fault"] = message
        self.write()

    def write(self) -> None:
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.data))
        temporary.replace(self.path)


# ------------------------------------------------------------------------------------- set-up


@dataclass(frozen=True)
class _Folders:
    """The sandbox folder's parts, on the host (inside the jail's mount namespace)."""

    root: Path

    def __getattr__(self, name: str) -> Path:
        return self.root / name


def _prepare(spec: dict[str, Any]) -> tuple[list[str], list[int]]:
    """Mounts, files and filter for bubblewrap; returns its command and the descriptors it needs."""
    folders = _Folders(Path(spec["root"]))
    uid, gid = int(spec["uid"]), int(spec["gid"])
    connection = json.loads(Path(spec["connection_file"]).read_text())
    _private_mounts()
    size = f"size={spec['work_mb']}m,nr_inodes={spec['work_inodes']}"
    _mount("tmpfs", folders.work, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=0700,uid={uid},gid={gid},{size}")
    if spec.get("copy"):
        _copy_submission(spec["copy"], folders.work, uid=uid, gid=gid)
    exposed = []
    for index, (source, inside) in enumerate(spec["expose"]):
        staged = folders.stage / str(index)
        staged.mkdir(parents=True, exist_ok=True)
        _mount(source, staged, None, MS_BIND | MS_REC, None)  # root reaches it; the uid reaches this
        exposed.append((str(staged), inside))
    _write_etc(folders.etc, uid=uid, gid=gid)
    connection.update(ip=f"{KERNEL_DIR}/kernel", transport="ipc")
    private = folders.ipc / "connection.json"
    private.write_text(json.dumps(connection))
    os.chown(private, uid, gid)
    os.chmod(private, 0o600)
    argv = [f"{KERNEL_DIR}/connection.json" if a == spec["connection_file"] else str(a) for a in spec["argv"]]
    if len(argv) > 2 and argv[1] == "-m":
        argv.insert(1, "-I")  # files in the work folder must not shadow the kernel's own modules
    program = os.memfd_create("portbinding-seccomp", 0)
    os.write(program, seccomp.build())
    os.lseek(program, 0, os.SEEK_SET)
    log = os.open(spec["kernel_log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    command = bwrap_command(spec, folders, exposed, argv, seccomp_fd=program)
    return command, [program, log]


def bwrap_command(
    spec: dict[str, Any],
    folders: _Folders,
    exposed: list[tuple[str, str]],
    argv: list[str],
    *,
    seccomp_fd: int,
) -> list[str]:
    """The kernel's world, built up from nothing by bubblewrap."""
    bwrap = shutil.which("bwrap") or "/usr/bin/bwrap"
    command = [
        bwrap, "--unshare-user", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
        "--unshare-cgroup", "--disable-userns", "--die-with-parent", "--hostname", "grading",
    ]  # fmt: skip
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            command += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            command += ["--ro-bind", path, path]
    command += [
        "--ro-bind", str(folders.etc), "/etc",
        "--proc", "/proc",
        "--dev", "/dev",
        "--perms", "1777", "--size", str(spec["shm_mb"] * 2**20), "--tmpfs", "/dev/shm",
        "--perms", "1777", "--size", str(spec["tmp_mb"] * 2**20), "--tmpfs", "/tmp",
        "--perms", "1777", "--size", str(spec["tmp_mb"] * 2**20), "--tmpfs", "/var/tmp",
        "--perms", "0755", "--size", str(2**20), "--tmpfs", "/run",
        "--symlink", "../run", "/var/run",
    ]  # fmt: skip
    # After the tmpfs folders, so a venv kept under /tmp (a throwaway install) is not hidden.
    for staged, inside in exposed:
        command += ["--ro-bind", staged, inside]
    command += [
        "--bind", str(folders.ipc), KERNEL_DIR,
        "--bind", str(folders.door), DOOR_DIR,
    ]  # fmt: skip
    for target in spec["decoys"]:  # where engine sockets are looked for: the decoy answers there
        inside = "/run/" + target.removeprefix("/var/run/") if target.startswith("/var/run/") else target
        command += ["--bind", str(folders.door / "engine.sock"), inside]
    command += [
        "--bind", str(folders.work), HOME,
        "--remount-ro", "/",
        "--chdir", HOME,
        "--seccomp", str(seccomp_fd),
        "--", *argv,
    ]  # fmt: skip
    return command


def _private_mounts() -> None:
    """A mount namespace of the jail's own, where nothing propagates back to the host."""
    if _LIBC.unshare(CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS) failed")
    _mount(None, Path("/"), None, MS_REC | MS_PRIVATE, None)


def _mount(
    source: str | Path | None, target: Path, kind: str | None, flags: int, options: str | None
) -> None:
    encoded = [None if v is None else str(v).encode() for v in (source, target, kind, options)]
    if _LIBC.mount(encoded[0], encoded[1], encoded[2], flags, encoded[3]) != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"mount {source} on {target}: {os.strerror(number)}")


def _copy_submission(copy: dict[str, Any], work: Path, *, uid: int, gid: int) -> None:
    """The submission's files (no notebooks: nbgrader feeds those in), as the kernel's own.

    ``copy["source"]`` is nbgrader's autograded folder, which nbgrader filled as root and
    through symlinks; so each file must also be a regular file of the same size in the
    submitted folder (or an instructor's file in the assignment's source folder).
    """
    checks = [Path(folder) for folder in copy.get("check_against", [])]

    def genuine(relative: str, info: os.stat_result) -> bool:
        for folder in checks:
            original = safecopy.regular_file(folder, relative)
            if original is not None and original.st_size == info.st_size:
                return True
        return False

    rules = safecopy.CopyRules(
        max_file_bytes=int(copy["limit_bytes"]), max_total_bytes=int(copy["limit_bytes"]), max_files=200,
        max_depth=3, owner=None, skip_notebooks=True, skip_hidden=True, over_limit_refuses=False,
    )  # fmt: skip
    safecopy.copy_tree(Path(copy["source"]), work, rules, uid=uid, gid=gid, extra_mode=0o600, accept=genuine)
    os.chmod(work, 0o700)


def _write_etc(folder: Path, *, uid: int, gid: int) -> None:
    """Just enough of /etc for a Python kernel: who it is, and that localhost is itself."""
    folder.mkdir(mode=0o755, exist_ok=True)
    files = {
        "passwd": f"learner:x:{uid}:{gid}:learner:{HOME}:/bin/sh\n",
        "group": f"learner:x:{gid}:\n",
        "hosts": "127.0.0.1 localhost grading\n::1 localhost\n",
        "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
    }
    for name, text in files.items():
        (folder / name).write_text(text)
        os.chmod(folder / name, 0o644)


# ------------------------------------------------------------------------------------ sandbox


def _become_sandbox(spec: dict[str, Any], command: list[str], keep: list[int]) -> None:
    """In the forked child: join the cgroups, take the limits and the uid, and exec bubblewrap."""
    try:
        program, log = keep
        for path in spec["cgroups"]:
            Path(path, "cgroup.procs").write_text("0")  # "0" is this process; children inherit the group
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)  # never the instructor's terminal: it could be typed into or drawn on
        os.closerange(3, program)
        os.closerange(program + 1, 65536)
        os.set_inheritable(program, True)
        for name, value in spec["rlimits"].items():
            soft, hard = (value, value) if name != "CPU" else (value, value + 5)  # SIGXCPU first, then KILL
            resource.setrlimit(RLIMITS[name], (soft, hard))
        os.setgroups([])
        os.setresgid(spec["gid"], spec["gid"], spec["gid"])
        os.setresuid(spec["uid"], spec["uid"], spec["uid"])
        if _LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        os.execve(command[0], command, {str(k): str(v) for k, v in spec["env"].items()})
    except BaseException as error:  # in the forked child: report and leave, never unwind into the jail
        with contextlib.suppress(OSError):
            os.write(2, f"bwrap: grading sandbox: cannot start: {error}\n".encode())
        os._exit(71)


def _watch(child: int, spec: dict[str, Any], report: Report) -> int:
    """Reap bubblewrap, check the limits, and end everything when it ends."""

    def stop(signum: int, frame: object) -> None:
        _kill_sandbox(child, spec)

    signal.signal(signal.SIGTERM, stop)
    parent = os.getppid()
    status: int | None = None
    while status is None:
        with contextlib.suppress(ChildProcessError):
            pid, code = os.waitpid(child, os.WNOHANG)
            if pid == child:
                status = code
                break
        problem = _limit_hit(spec)
        if problem is not None:
            report.violation(*problem)
            _kill_sandbox(child, spec)
        if os.getppid() != parent:  # the grader died (killed at a time limit?): nobody will read this kernel
            _kill_sandbox(child, spec)
        # Sleeps until bubblewrap exits (SIGCHLD) or the next limit check is due.
        signal.sigtimedwait([signal.SIGCHLD], WATCH_INTERVAL_S)
    _record_exit(status, spec, report)
    problem = _limit_hit(spec)
    if problem is not None:
        report.violation(*problem)
    _kill_sandbox(child, spec)
    report.write()
    return 0


def _record_exit(status: int, spec: dict[str, Any], report: Report) -> None:
    # bubblewrap exits with its command's status, 128 + N for a command killed by signal N.
    number = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    if code is not None and code > 128:
        number = code - 128
    report.data["exit"] = {"signal": number} if number is not None else {"code": code}
    if number == signal.SIGXCPU or (number == signal.SIGKILL and _cpu_spent() >= spec["rlimits"]["CPU"]):
        report.violation(
            "cpu",
            f"The notebook used more than {spec['rlimits']['CPU']} s of CPU time (an endless loop?) "
            "and was stopped.",
        )
    if code not in (None, 0) and number is None:
        # bubblewrap says "bwrap: ..." when it could not build the sandbox: the grader's fault.
        failed = [line for line in _log_tail(spec).splitlines() if line.startswith("bwrap: ")]
        if failed:
            report.fault(f"The grading sandbox could not be set up: {failed[-1][:300]}")


def _kill_sandbox(child: int, spec: dict[str, Any]) -> None:
    """Kill bubblewrap (its sandbox dies with it) and anything still in the sandbox's cgroups."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(child, signal.SIGKILL)
    for group in spec["cgroups"]:
        with contextlib.suppress(OSError):
            for pid in Path(group, "cgroup.procs").read_text().split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)


def _cpu_spent() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _log_tail(spec: dict[str, Any], size: int = 4096) -> str:
    with contextlib.suppress(OSError), open(spec["kernel_log"], "rb") as handle:
        handle.seek(max(0, os.fstat(handle.fileno()).st_size - size))
        return handle.read().decode("utf-8", "replace")
    return ""


def _limit_hit(spec: dict[str, Any]) -> tuple[str, str] | None:
    pids = spec.get("pids_events")
    if pids and _counter(Path(pids), "max") > 0:
        return (
            "processes",
            f"The notebook tried to start more than {spec['pids_max']} processes at once (a fork "
            "bomb?) and was stopped.",
        )
    oom = spec.get("oom_events")
    if oom and _counter(Path(oom), "oom_kill") > 0:
        return (
            "memory",
            f"The notebook used more than {spec['memory_mb']} MB of memory (a list growing "
            "forever, or output printed in an endless loop?) and was stopped.",
        )
    with contextlib.suppress(OSError):
        disk = os.statvfs(Path(spec["root"], "work"))
        if disk.f_bavail == 0 or disk.f_favail == 0:
            return (
                "disk",
                f"The notebook filled its {spec['work_mb']} MB working folder (gigabytes of output "
                "written to files?) and was stopped.",
            )
    with contextlib.suppress(OSError):
        if os.stat(spec["kernel_log"]).st_size > MAX_LOG_BYTES:
            return (
                "output",
                f"The notebook wrote more than {MAX_LOG_BYTES // 2**20} MB straight to the kernel's own "
                "output and was stopped (output is capped while grading).",
            )
    return None


def _counter(path: Path, key: str) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
