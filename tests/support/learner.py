"""A learner at a terminal: climbs the ladder with the docker CLI, decides, and fixes by hand.

The lesson tests hand a challenge to this learner the way a person gets it -- the URL that must
answer, the container meant to serve it, the service expected there -- and it does what lessons
02-04 taught: ``docker inspect`` and ``docker logs`` (state), the port bindings (published),
``cat /proc/net/tcp`` read by hand (listening), a request from inside (inside), and curl from the
host. It then names the failing rung and cause, and writes the docker commands that fix it. None
of it uses the course's own code: only the CLI, curl, and what the lessons said to look for.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from dataclasses import dataclass, field

from tests.support.challenge import TEST_LABELS, shell

# A request from inside, as lesson 02 wrote it (the images have python3, not curl).
_INSIDE = (
    "import urllib.request as u, urllib.error as e\n"
    "try:\n    r = u.urlopen('http://127.0.0.1:{port}{path}', timeout=3)\n"
    "    print(r.status, r.read(300).decode())\n"
    "except e.HTTPError as x:\n    print(x.code, '')\n"
)


@dataclass
class Seen:
    """What the learner read on each rung."""

    name: str
    status: str = "missing"
    image: str = ""
    env: dict[str, str] = field(default_factory=dict)
    image_env: dict[str, str] = field(default_factory=dict)
    cmd: list[str] = field(default_factory=list)
    image_cmd: list[str] = field(default_factory=list)
    published: dict[int, int] = field(default_factory=dict)  # container port -> host port
    logs: str = ""
    listeners: list[tuple[str, int]] = field(default_factory=list)  # (address, port), decoded by hand
    inside: dict[int, str] = field(default_factory=dict)  # port -> "status body"
    holders: list[str] = field(default_factory=list)  # other containers publishing the host port
    commands: list[str] = field(default_factory=list)  # every command typed, in order


def _run(seen: Seen, line: str) -> subprocess.CompletedProcess[str]:
    seen.commands.append(line)
    return shell(line, timeout=60)


def decode(hex_address: str) -> str:
    """A /proc/net/tcp address by hand: IPv4 bytes backwards; IPv6 as four such words."""
    if len(hex_address) == 8:
        return ".".join(str(int(hex_address[i : i + 2], 16)) for i in (6, 4, 2, 0))
    words = [hex_address[i : i + 8] for i in range(0, 32, 8)]
    swapped = "".join(w[6:8] + w[4:6] + w[2:4] + w[0:2] for w in words)
    groups = [swapped[i : i + 4] for i in range(0, 32, 4)]
    text = ":".join(groups).lower()
    return "::" if set(swapped) == {"0"} else text


def look(told: dict[str, object]) -> Seen:
    """Climb the ladder on the container the challenge names, with the docker CLI."""
    seen = Seen(str(told["container"]))
    host_port = int(str(told["host_port"]))
    found = _run(seen, f"docker inspect {seen.name}")
    if found.returncode == 0:
        data = json.loads(found.stdout)[0]
        seen.status = data["State"]["Status"]
        seen.image = data["Config"]["Image"]
        seen.env = dict(item.split("=", 1) for item in data["Config"].get("Env") or [])
        seen.cmd = list(data["Config"].get("Cmd") or [])
        for key, bindings in (data["HostConfig"].get("PortBindings") or {}).items():
            for binding in bindings or []:
                seen.published[int(key.split("/")[0])] = int(binding.get("HostPort") or 0)
        image = json.loads(_run(seen, f"docker image inspect {shlex.quote(seen.image)}").stdout)[0]["Config"]
        seen.image_env = dict(item.split("=", 1) for item in image.get("Env") or [])
        seen.image_cmd = list(image.get("Cmd") or [])
        seen.logs = _run(seen, f"docker logs --tail 40 {seen.name} 2>&1").stdout
    holders = _run(seen, f"docker ps --filter publish={host_port} --format '{{{{.Names}}}}'").stdout.split()
    seen.holders = [name for name in holders if name != seen.name]
    if seen.status == "running":
        table = _run(seen, f"docker exec {seen.name} cat /proc/net/tcp /proc/net/tcp6").stdout
        for line in table.splitlines():
            parts = line.split()
            if len(parts) > 3 and parts[0].endswith(":") and parts[3] == "0A":
                address, hex_port = parts[1].split(":")
                seen.listeners.append((decode(address), int(hex_port, 16)))
        path = str(told["expects"]).split()[1]
        for port in sorted({port for _, port in seen.listeners}):
            code = _INSIDE.format(port=port, path=path)
            seen.inside[port] = _run(
                seen, f"docker exec {seen.name} python3 -c {shlex.quote(code)}"
            ).stdout.strip()
    return seen


def _right_service(told: dict[str, object], answer: str) -> bool:
    """Whether an answer from inside is the service the task names (what its GET should return)."""
    if not answer.startswith("200 "):
        return False
    body = answer[4:]
    if "Jupyter" in str(told["service"]):
        return '"version"' in body and '"status"' not in body
    return '"status"' in body


@dataclass(frozen=True)
class Decision:
    layer: str
    cause: str
    fix: list[str]  # the commands, in order ([] when the fix is to wait)


def decide(told: dict[str, object], seen: Seen) -> Decision:
    """The first rung that does not hold, the cause, and the commands that fix it."""
    host_port = int(str(told["host_port"]))
    if seen.status == "created" and seen.holders:
        return Decision(
            "published", "port_taken", [f"docker rm -f {seen.holders[0]}", f"docker start {seen.name}"]
        )
    if seen.status in ("exited", "dead"):
        wanted = re.findall(r"-e (\w+=\S+)", seen.logs)
        env = dict(item.split("=", 1) for item in wanted)
        return Decision("state", "crashed", _rerun(seen, host_port, env=env))
    if not seen.listeners:
        return Decision("listening", "still_starting", [])
    app_ports = [port for port, answer in seen.inside.items() if _right_service(told, answer)]
    right = app_ports[0] if app_ports else seen.listeners[0][1]
    if "already in use" in seen.logs and len({port for _, port in seen.listeners}) > 1:
        return Decision("listening", "port_retried", _rerun(seen, host_port, port=right))
    where = [address for address, port in seen.listeners if port == right]
    if where and all(address.startswith("127.") or address == "::1" for address in where):
        if "BIND_HOST" in seen.env:
            return Decision(
                "listening", "loopback_only", _rerun(seen, host_port, env={"BIND_HOST": "0.0.0.0"})
            )
        return Decision(
            "listening", "loopback_only", _rerun(seen, host_port, extra=["--ServerApp.ip=0.0.0.0"])
        )
    if not seen.published:
        return Decision("published", "not_published", _rerun(seen, host_port, port=right))
    published = next(iter(seen.published))
    if published in seen.inside and not _right_service(told, seen.inside[published]):
        return Decision("inside", "wrong_service", _rerun(seen, host_port, port=right))
    return Decision("listening", "wrong_container_port", _rerun(seen, host_port, port=right))


def _rerun(
    seen: Seen,
    host_port: int,
    *,
    port: int | None = None,
    env: dict[str, str] | None = None,
    extra: list[str] | None = None,
) -> list[str]:
    """Remove the container and run it again with the same image, command and settings, corrected."""
    container_port = (
        port or next(iter(seen.published), 0) or (seen.listeners[0][1] if seen.listeners else 8000)
    )
    settings = {k: v for k, v in seen.env.items() if seen.image_env.get(k) != v}
    settings.update(env or {})
    words = ["docker", "run", "-d", "--name", seen.name, *shlex.split(TEST_LABELS)]
    words += ["-p", f"127.0.0.1:{host_port}:{container_port}"]
    for key, value in settings.items():
        words += ["-e", f"{key}={value}"]
    words.append(seen.image)
    if seen.cmd != seen.image_cmd:
        words += seen.cmd
    words += extra or []
    return [f"docker rm -f {seen.name}", shlex.join(words)]
