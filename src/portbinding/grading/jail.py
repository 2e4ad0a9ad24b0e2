"""PID 1 of a grading sandbox: set the walls up as root, then run the kernel as nobody in particular.

Started by the trusted grader as::

    unshare --mount --net --pid --ipc --uts --fork --kill-child --mount-proc -- \\
        python -I -m portbinding.grading.jail SPEC.json

so it begins as root inside fresh namespaces: its own mount table, a network with only a
loopback interface, its own process tree. Here it

1. hides the host's sockets and scratch space: fresh tmpfs on /run, /tmp, /var/tmp, /dev/shm,
   and the door's *decoy* bind-mounted where the engine socket was (/run/docker.sock);
2. gives the kernel a size-capped tmpfs as its working folder (a copy of the submission's
   files) and makes every other mount read-only;
3. joins the sandbox's cgroups (processes, memory), brings up loopback, then forks the
   kernel with a throwaway uid, no groups, no_new_privs, and rlimits (processes, files,
   file size, CPU, address space);
4. watches the limits while the kernel runs, records what was hit in a report only root can
   write, and kills everything in the namespace when a limit is hit or the kernel exits.

Standard library only, and nothing here trusts the kernel: it runs before the kernel exists
or watches it from outside.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import resource
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

PR_SET_NO_NEW_PRIVS = 38
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
WATCH_INTERVAL_S = 0.25
RLIMITS = {
    "NPROC": resource.RLIMIT_NPROC,
    "NOFILE": resource.RLIMIT_NOFILE,
    "FSIZE": resource.RLIMIT_FSIZE,
    "CPU": resource.RLIMIT_CPU,
    "AS": resource.RLIMIT_AS,
    "CORE": resource.RLIMIT_CORE,
}
SCRATCH = {"/tmp": "mode=1777,size=64m", "/var/tmp": "mode=1777,size=16m", "/dev/shm": "mode=1777,size=16m",
           "/run": "mode=755,size=1m"}  # fmt: skip
# Mount points left as they are: device nodes must stay writable (/dev/null), proc and sys
# are the kernel's own views and are not writable by an unprivileged user anyway.
KEEP_AS_IS = ("/proc", "/sys", "/dev")


def main(argv: list[str]) -> int:
    spec: dict[str, Any] = json.loads(Path(argv[1]).read_text())
    # unshare blocks SIGINT/SIGTERM before forking us, and a blocked mask is inherited.
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # interrupts are for the kernel, in our process group
    report = Report(Path(spec["report"]))
    try:
        # Read now: the connection file may live in /tmp, which the walls replace.
        connection = Path(spec["connection_file"]).read_bytes()
        _build_walls(spec)
    except (OSError, subprocess.SubprocessError, ValueError) as error:
        report.violation("sandbox", f"The grading sandbox could not be set up: {error}")
        report.write()
        return 70
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGCHLD])  # waited for below
    kernel = os.fork()
    if kernel == 0:
        _become_kernel(spec, connection)  # never returns
    return _watch(kernel, spec, report)


class Report:
    """What the jail saw, written where only root can write (the kernel cannot forge it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {"violations": [], "exit": None}

    def violation(self, code: str, message: str) -> None:
        if all(v["code"] != code for v in self.data["violations"]):
            self.data["violations"].append({"code": code, "message": message})
            self.write()

    def write(self) -> None:
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.data))
        temporary.replace(self.path)


# ------------------------------------------------------------------------------------- walls


def _mount(*args: str, keep_fd: int | None = None) -> None:
    subprocess.run(
        ["mount", *args],
        check=True,
        timeout=10,
        capture_output=True,
        pass_fds=() if keep_fd is None else (keep_fd,),
    )


def _build_walls(spec: dict[str, Any]) -> None:
    work, ipc, decoy = Path(spec["work"]), Path(spec["ipc"]), Path(spec["decoy"])
    _mount(
        "-t",
        "tmpfs",
        "-o",
        f"nosuid,nodev,mode=0700,uid={spec['uid']},gid={spec['gid']},"
        f"size={spec['work_mb']}m,nr_inodes={spec['work_inodes']}",
        "tmpfs",
        str(work),
    )
    if spec.get("copy_from"):
        _copy_submission(Path(spec["copy_from"]), work, spec)  # first: the source may be under /tmp
    covers = {folder: "mode=755,size=1m" for folder in spec["hide_dirs"]}
    covers.update(SCRATCH)
    _cover_keeping(covers, spec["expose"])
    if Path("/var/run").is_dir() and not Path("/var/run").is_symlink():
        _mount("-t", "tmpfs", "-o", "nosuid,nodev,mode=755,size=1m", "tmpfs", "/var/run")
    for socket_path in spec["hide_sockets"]:
        _cover_with_decoy(Path(socket_path), decoy)
    report_dir = str(Path(spec["report"]).parent)
    for folder in (str(ipc), report_dir):
        _mount("--bind", folder, folder)  # their own mount points, so they stay writable below
    writable = {*SCRATCH, "/var/run", str(work), str(ipc), report_dir}
    for point in _mount_points():
        if (
            point in writable
            or point.startswith(tuple(f"{keep}/" for keep in KEEP_AS_IS))
            or point in KEEP_AS_IS
        ):
            continue
        with contextlib.suppress(
            subprocess.CalledProcessError
        ):  # a few special mounts refuse; they are not ours
            _mount("-o", "remount,bind,ro", point)
    for path in spec["cgroups"]:
        Path(path, "cgroup.procs").write_text("0")  # "0" is this process; children inherit the group
    _loopback_up()


def _cover_keeping(covers: dict[str, str], expose: list[str]) -> None:
    """Cover folders with empty tmpfs (homes: credentials, history; /tmp and /run: sockets and
    scratch), keeping what the kernel needs.

    The interpreter, the venv or the course's code may live in one (pyenv under /root, a
    checkout under /tmp): such paths are opened first and bind-mounted back into the empty
    folder, so the kernel sees them and nothing else there.
    """
    keep = {
        path: os.open(path, os.O_PATH)
        for path in expose
        if any(path == c or path.startswith(c + "/") for c in covers) and os.path.isdir(path)
    }
    for folder, options in covers.items():
        if Path(folder).is_dir() and not Path(folder).is_symlink():
            _mount("-t", "tmpfs", "-o", f"nosuid,nodev,{options}", "tmpfs", folder)
    for path, fd in sorted(keep.items()):
        Path(path).mkdir(parents=True, exist_ok=True)
        # --no-canonicalize: the fd names the original folder; its path now names the empty one.
        _mount("--no-canonicalize", "--bind", f"/proc/self/fd/{fd}", path, keep_fd=fd)
        os.close(fd)


def _cover_with_decoy(target: Path, decoy: Path) -> None:
    """Put the door's decoy where an engine socket was (or would be), on the private /run."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        target.touch()
    _mount("--bind", str(decoy), str(target))


def _mount_points() -> list[str]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        points.append(fields[4].replace("\\040", " "))
    return sorted(set(points), key=len)


def _copy_submission(source: Path, work: Path, spec: dict[str, Any]) -> None:
    """Copy the submission's regular files (not notebooks, never through symlinks) into work."""
    budget = int(spec["copy_limit_bytes"])
    uid, gid = int(spec["uid"]), int(spec["gid"])
    for folder, dirs, files in os.walk(source, followlinks=False):
        depth = len(Path(folder).relative_to(source).parts)
        dirs[:] = [d for d in dirs if depth < 3 and not d.startswith(".")]
        target_dir = work / Path(folder).relative_to(source)
        target_dir.mkdir(parents=True, exist_ok=True)
        os.chown(target_dir, uid, gid)
        for name in files:
            if name.endswith(".ipynb") or name.startswith("."):
                continue
            try:
                budget -= _copy_file(Path(folder, name), target_dir / name, budget=budget, uid=uid, gid=gid)
            except OSError:
                continue  # sockets, fifos, unreadable files: not part of a submission


def _copy_file(source: Path, target: Path, *, budget: int, uid: int, gid: int) -> int:
    """Copy one regular file (never through a symlink) within ``budget`` bytes; return its size."""
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > budget:
            return 0
        with target.open("wb") as out:
            shutil.copyfileobj(handle, out)
    os.chown(target, uid, gid)
    return info.st_size


def _loopback_up() -> None:
    """Bring up lo in the new network namespace (exercises run small local servers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


# ------------------------------------------------------------------------------------ kernel


def _become_kernel(spec: dict[str, Any], connection: bytes) -> None:
    try:
        os.closerange(3, 65536)
        private = Path(spec["ipc"]) / "connection.json"
        private.write_bytes(connection)  # the original is root's and 0600
        os.chown(private, spec["uid"], spec["gid"])
        os.chmod(private, 0o600)
        argv = [str(private) if a == spec["connection_file"] else str(a) for a in spec["argv"]]
        for name, value in spec["rlimits"].items():
            soft, hard = (value, value) if name != "CPU" else (value, value + 5)  # SIGXCPU first, then KILL
            resource.setrlimit(RLIMITS[name], (soft, hard))
        os.setgroups([])
        os.setresgid(spec["gid"], spec["gid"], spec["gid"])
        os.setresuid(spec["uid"], spec["uid"], spec["uid"])
        if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        os.chdir(spec["work"])
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        os.execve(argv[0], argv, {str(k): str(v) for k, v in spec["env"].items()})
    except BaseException as error:  # in the forked child: report and leave, never unwind into the jail
        with contextlib.suppress(OSError):
            os.write(2, f"grading sandbox: cannot start the kernel: {error}\n".encode())
        os._exit(71)


def _watch(kernel: int, spec: dict[str, Any], report: Report) -> int:
    """Reap children, check the limits, and end everything when the kernel ends."""

    def stop(signum: int, frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(-1, signal.SIGKILL)  # from PID 1: every other process in this namespace

    signal.signal(signal.SIGTERM, stop)
    status: int | None = None
    while status is None:
        while True:
            try:
                pid, code = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid, code = kernel, 0
            if pid == 0:
                break
            if pid == kernel:
                status = code
                break
        if status is not None:
            break
        problem = _limit_hit(spec)
        if problem is not None:
            report.violation(*problem)
            stop(signal.SIGKILL, None)
        # Sleeps until a child exits (SIGCHLD) or the next limit check is due.
        signal.sigtimedwait([signal.SIGCHLD], WATCH_INTERVAL_S)
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        report.data["exit"] = {"signal": number}
        if number == signal.SIGXCPU or (number == signal.SIGKILL and _cpu_spent() >= spec["rlimits"]["CPU"]):
            report.violation(
                "cpu",
                f"The notebook used more than {spec['rlimits']['CPU']} s of CPU time (an "
                "endless loop?) and was stopped.",
            )
    else:
        report.data["exit"] = {"code": os.WEXITSTATUS(status)}
    problem = _limit_hit(spec)
    if problem is not None:
        report.violation(*problem)
    report.write()
    stop(signal.SIGKILL, None)
    return 0


def _cpu_spent() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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
        disk = os.statvfs(spec["work"])
        if disk.f_bavail == 0 or disk.f_favail == 0:
            return (
                "disk",
                f"The notebook filled its {spec['work_mb']} MB working folder (gigabytes of output "
                "written to files?) and was stopped.",
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
