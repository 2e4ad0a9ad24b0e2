"""Why can't I reach it? Evidence from every layer, a cause, and the exact fix.

The layers, outside in: is the container running (state, exit code, logs)? Is the port
published (the engine's mappings)? Does anything listen inside, and on which address (the
kernel's own tables in /proc/net/tcp and tcp6, so slim images need no tools)? Does it answer
inside? Does it answer from the host? The symptom alone misleads -- a reset and a refusal can
mean the same mistake seen through different paths -- so the cause is read from the evidence.

Works on any container, not only the course's: nothing here depends on the course images.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import docker.errors
import requests.exceptions
from docker.models.containers import Container

from portbinding.command import RunSpec
from portbinding.diagnose.ladder import (
    CAUSE_LAYER,
    CAUSES,
    LAYER_TITLE,
    LAYERS,
    SUMMARY,
    Cause,
    Expect,
    Layer,
)
from portbinding.engine import NAMED_LABEL, Engine, PublishedPort
from portbinding.errors import ContainerFailed
from portbinding.ports import PortMapping
from portbinding.probe import ProbeResult, probe_http
from portbinding.procnet import LISTEN_COMMAND, Listener, listeners_from_proc, split_cat_output

LOGGER = logging.getLogger(__name__)

# Run inside the container (with its own python3) to probe every listener from within:
# GET /api from the inside tells "it works in there" apart from "it does not work at all".
INSIDE_PROBE = r"""
import json, socket, sys
out = {}
for target in sys.argv[1:]:
    host, _, port = target.rpartition(":")
    try:
        s = socket.create_connection((host.strip("[]"), int(port)), timeout=2)
        s.settimeout(2)
        s.sendall(b"GET /api HTTP/1.0\r\nHost: localhost\r\n\r\n")
        data = b""
        while len(data) < 4096:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
        out[target] = data[:600].decode("utf-8", "replace")
    except Exception as exc:
        out[target] = "ERROR " + type(exc).__name__ + ": " + str(exc)
print(json.dumps(out))
"""

_RETRIED = re.compile(r"The port (\d+) is already in use, trying another port")
_ENV_HINT = re.compile(r"-e\s+([A-Za-z_][A-Za-z0-9_]*)=(\S+)")
_LOOPBACK_VALUES = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class InsideAnswer:
    """What a listener answered to GET /api from inside the container."""

    address: str
    port: int
    reply: str

    @property
    def is_http(self) -> bool:
        return self.reply.startswith("HTTP/")

    @property
    def is_loopback(self) -> bool:
        return self.address.startswith("127.") or self.address == "::1"

    @property
    def is_jupyter(self) -> bool:
        head, _, body = self.reply.partition("\r\n\r\n")
        if not head.startswith("HTTP/1") or " 200 " not in head.split("\r\n", 1)[0]:
            return False
        try:
            return "version" in json.loads(body)
        except ValueError:
            return False


@dataclass(frozen=True)
class Evidence:
    """Everything observed, layer by layer (each field a plain value, ready for JSON)."""

    container: str
    image: str
    status: str
    exit_code: int | None
    health: str | None
    running_for_s: float | None
    log_tail: list[str]
    container_port: int | None
    published: list[str]
    listeners: list[str]
    inside: dict[str, str]
    host_probe: dict[str, object] | None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Fix:
    """The remedy: an exact corrected run line, and/or the configuration change that is the real fix."""

    summary: str
    run: RunSpec | None = None
    config_change: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "summary": self.summary,
            "run": self.run.to_cli() if self.run else None,
            "config_change": self.config_change,
        }


@dataclass(frozen=True)
class Diagnosis:
    """A cause, the evidence it was read from, and the fix."""

    cause: Cause
    evidence: Evidence
    fix: Fix

    @property
    def summary(self) -> str:
        return SUMMARY[self.cause]

    def to_dict(self) -> dict[str, object]:
        return {
            "cause": self.cause,
            "summary": self.summary,
            "evidence": asdict(self.evidence),
            "fix": self.fix.to_dict(),
        }

    def explain(self) -> str:
        """A short text for a learner: the cause, the key evidence, the fix."""
        lines = [f"Cause: {self.cause} -- {self.summary}"]
        ev = self.evidence
        lines.append(f"  state: {ev.status}" + (f" (exit code {ev.exit_code})" if ev.exit_code else ""))
        lines.append(f"  published: {', '.join(ev.published) or 'nothing'}")
        if ev.status == "running":
            lines.append(f"  listening inside: {', '.join(ev.listeners) or 'nothing yet'}")
        if ev.host_probe:
            lines.append(f"  from the host: {ev.host_probe.get('outcome')} -- {ev.host_probe.get('detail')}")
        lines.extend(f"  note: {note}" for note in ev.notes)
        lines.append(f"Fix: {self.fix.summary}")
        if self.fix.run:
            lines.append(f"  run: {self.fix.run.to_cli()}")
        if self.fix.config_change:
            lines.append(f"  config: {self.fix.config_change}")
        return "\n".join(lines)


def diagnose(
    engine: Engine,
    container: Container | str,
    *,
    container_port: int | None = None,
    expect: Expect | None = None,
    path: str = "/",
    probe: Callable[[str], ProbeResult] | None = None,
) -> Diagnosis:
    """Diagnose why ``container``'s port is (un)reachable from here.

    ``container_port`` defaults to the first published, then the first exposed port.
    ``expect`` ("jupyter" or "http") says what should answer; by default it is inferred
    (Jupyter if Jupyter answers inside, else any HTTP). ``path`` is probed from the host.
    """
    target = engine.get(container) if isinstance(container, str) else container
    state = engine.state(target)
    attrs = target.attrs
    status = str(state.get("Status", "unknown"))
    logs = engine.logs(target, tail=40).splitlines()
    published = engine.ports(target)
    port = container_port or _default_port(attrs, published)
    run_spec = spec_from_container(attrs, image_config=_image_config(engine, attrs))
    health = (state.get("Health") or {}).get("Status")
    running_for = _running_for(state)
    exit_code = int(state.get("ExitCode", 0)) if status != "running" else None

    def evidence(**more: object) -> Evidence:
        base: dict[str, object] = {
            "container": str(target.name),
            "image": str(attrs.get("Config", {}).get("Image", "")),
            "status": status,
            "exit_code": exit_code,
            "health": health,
            "running_for_s": running_for,
            "log_tail": logs[-12:],
            "container_port": port,
            "published": [str(p) for p in published],
            "listeners": [],
            "inside": {},
            "host_probe": None,
        }
        base.update(more)
        return Evidence(**base)  # type: ignore[arg-type]

    if status != "running":
        return Diagnosis("crashed", evidence(), _crash_fix(run_spec, logs, exit_code))

    listeners, inside, notes = look_inside(engine, target)
    answers = {f"{a.address}:{a.port}": a for a in inside}
    wanted: Expect = expect or ("jupyter" if any(a.is_jupyter for a in inside) else "http")

    def serves(answer: InsideAnswer) -> bool:
        return answer.is_jupyter if wanted == "jupyter" else answer.is_http

    listen_text = [f"{_fmt(item.address)}:{item.port}" for item in listeners]
    inside_text = {key: a.reply.split("\r\n", 1)[0][:120] for key, a in answers.items()}
    retried = _retried_from(logs)
    good = [a for a in inside if serves(a)]
    good_port = good[0].port if good else None
    mapped = [p for p in published if p.container_port == port and p.protocol == "tcp"]
    host_result: ProbeResult | None = None
    url = engine.url(target, port, path) if mapped and port is not None else None
    if url:
        host_result = (probe or _default_probe)(url)
    ev = evidence(
        listeners=listen_text,
        inside=inside_text,
        host_probe=host_result.to_dict() if host_result else None,
        notes=notes,
    )

    if port is None:
        return Diagnosis("not_published", ev, _publish_fix(run_spec, good_port or _first_port(listeners)))
    on_port = [item for item in listeners if item.port == port]
    if retried is not None and good_port is not None and good_port != port:
        return Diagnosis("port_retried", ev, _retried_fix(run_spec, port, good_port, retried))
    if not listeners:
        return Diagnosis("still_starting", ev, _starting_fix(run_spec, running_for))
    if not on_port:
        actual = good_port or _first_port(listeners, outside=True)
        if running_for is not None and running_for < 5 and good_port is None:
            return Diagnosis("still_starting", ev, _starting_fix(run_spec, running_for))
        return Diagnosis("wrong_container_port", ev, _remap_fix(run_spec, port, actual))
    if all(listener.is_loopback for listener in on_port):
        return Diagnosis("loopback_only", ev, _loopback_fix(run_spec, attrs, wanted))
    if not mapped:
        return Diagnosis("not_published", ev, _publish_fix(run_spec, port))
    on_port_answer = next((a for a in inside if a.port == port and not a.is_loopback), None)
    if on_port_answer is not None and on_port_answer.reply and not serves(on_port_answer):
        if good_port is not None and good_port != port:
            return Diagnosis(
                "wrong_service", ev, _remap_fix(run_spec, port, good_port, reason="wrong_service")
            )
        return Diagnosis(
            "wrong_service",
            ev,
            Fix(
                f"Port {port} in this container answers, but not as {wanted}: publish the port where your "
                "service listens, or run the image that provides it."
            ),
        )
    if host_result is not None and host_result.reachable:
        return Diagnosis("ok", ev, Fix(f"Nothing to fix: {host_result.target} answers.", run=run_spec))
    # Listening on every interface and published, yet unreachable: usually the first moments
    # of a start (docker-proxy is up before the app), rarely a firewall in between.
    return Diagnosis("still_starting", ev, _starting_fix(run_spec, running_for))


# ------------------------------------------------------------------------------ evidence


def look_inside(engine: Engine, container: Container) -> tuple[list[Listener], list[InsideAnswer], list[str]]:
    """The container's listening sockets, what each answers to GET /api from inside, and notes."""
    notes: list[str] = []
    try:
        raw = engine.exec(container, list(LISTEN_COMMAND), timeout=5)
    except ContainerFailed:
        return [], [], ["the container stopped while it was being examined"]
    tcp, tcp6 = split_cat_output(raw.output)
    listeners = listeners_from_proc(tcp, tcp6)
    if raw.exit_code not in (0, 1) and not listeners:
        notes.append(f"could not read /proc/net/tcp inside the container: {raw.output.strip()[:120]}")
    if not listeners:
        return listeners, [], notes
    targets = [f"{_probe_address(item)}:{item.port}" for item in listeners]
    try:
        result = engine.exec(container, ["python3", "-c", INSIDE_PROBE, *targets], timeout=8)
    except ContainerFailed:
        notes.append("the container stopped while it was being probed from within")
        return listeners, [InsideAnswer(item.address, item.port, "") for item in listeners], notes
    answers: list[InsideAnswer] = []
    try:
        replies = json.loads(result.output.strip().splitlines()[-1]) if result.output.strip() else {}
    except ValueError:
        replies = {}
    if not replies:
        why = (
            "there is no python3 inside the container"
            if result.exit_code == 127
            else "the probe timed out"
            if result.timed_out
            else f"the probe failed (exit {result.exit_code})"
        )
        notes.append(f"listeners were not probed from within: {why}")
    for listener, key in zip(listeners, targets, strict=True):
        reply = str(replies.get(key, ""))
        answers.append(InsideAnswer(listener.address, listener.port, reply))
    return listeners, answers, notes


def _probe_address(listener: Listener) -> str:
    if listener.is_wildcard:
        return "127.0.0.1" if listener.family == "ipv4" else "[::1]"
    return f"[{listener.address}]" if ":" in listener.address else listener.address


def _fmt(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def _default_probe(url: str) -> ProbeResult:
    return probe_http(url, timeout=2.0)


def _default_port(attrs: dict[str, Any], published: list[PublishedPort]) -> int | None:
    tcp = [p.container_port for p in published if p.protocol == "tcp"]
    if tcp:
        return tcp[0]
    config = attrs.get("Config") or {}
    exposed = config.get("ExposedPorts") if isinstance(config, dict) else None
    for key in sorted(exposed or {}):
        number, _, protocol = key.partition("/")
        if protocol in ("", "tcp"):
            return int(number)
    bindings = (attrs.get("HostConfig") or {}).get("PortBindings")
    for key in sorted(bindings or {}):
        return int(key.partition("/")[0])
    return None


def _first_port(listeners: list[Listener], *, outside: bool = False) -> int | None:
    pool = [item for item in listeners if not (outside and item.is_loopback)] or listeners
    return pool[0].port if pool else None


def _running_for(state: Mapping[str, object]) -> float | None:
    started = str(state.get("StartedAt") or "")
    if not started or started.startswith("0001"):
        return None
    try:
        moment = datetime.fromisoformat(started[:26].rstrip("Z") + "+00:00")
    except ValueError:
        return None
    return max(0.0, (datetime.now(UTC) - moment).total_seconds())


def _retried_from(logs: list[str]) -> int | None:
    for line in logs:
        match = _RETRIED.search(line)
        if match:
            return int(match.group(1))
    return None


def _image_config(engine: Engine, attrs: dict[str, object]) -> dict[str, Any]:
    config = attrs.get("Config")
    image = config.get("Image") if isinstance(config, dict) else None
    try:
        found = engine.client.images.get(str(image))
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        return {}  # an image removed since: everything counts as set on the run line
    return dict(found.attrs.get("Config") or {})


def spec_from_container(attrs: dict[str, Any], *, image_config: dict[str, Any] | None = None) -> RunSpec:
    """The run line that would recreate this container (image, name, ports, env, command).

    What the image already provides is left out: environment variables and a command equal to
    the image's own. A name the engine made up is left out too (the course labels the
    containers it names).
    """
    config = attrs.get("Config") if isinstance(attrs.get("Config"), dict) else {}
    host = attrs.get("HostConfig") if isinstance(attrs.get("HostConfig"), dict) else {}
    assert isinstance(config, dict) and isinstance(host, dict)
    publish: list[PortMapping] = []
    for key, bindings in sorted((host.get("PortBindings") or {}).items()):
        number, _, protocol = key.partition("/")
        if bindings is None:
            continue  # Podman lists exposed but unpublished ports with null bindings
        for binding in bindings or [{}]:
            host_port = str(binding.get("HostPort") or "")
            publish.append(
                PortMapping(
                    int(number),
                    protocol or "tcp",
                    str(binding.get("HostIp") or ""),
                    int(host_port) if host_port.isdigit() else None,
                )
            )
    image_config = image_config or {}
    labels = config.get("Labels") or {}
    name = str(attrs.get("Name") or "").lstrip("/") or None
    if labels.get(NAMED_LABEL) == "0":
        name = None
    baked = set(image_config.get("Env") or [])
    baked |= _engine_env(config, baked)
    command = [str(c) for c in (config.get("Cmd") or [])]
    if command == list(image_config.get("Cmd") or []):
        command = []
    env = tuple(
        (item.split("=", 1)[0], item.split("=", 1)[1])
        for item in config.get("Env") or []
        if "=" in item and item not in baked
    )
    image = str(config.get("Image") or "")
    if _PODMAN_MARKER in (config.get("Env") or []):
        # Podman files local images under localhost/ and resolves the short name there first,
        # so the name as the learner typed it runs on Podman and Docker alike.
        image = image.removeprefix("localhost/")
    return RunSpec(
        image=image,
        name=name,
        publish=tuple(publish),
        publish_all=bool(host.get("PublishAllPorts")),
        env=env,
        detach=True,
        remove=bool(host.get("AutoRemove")),
        command=tuple(command),
    )


# Podman puts this in every container's environment (Docker adds nothing): the way to tell.
_PODMAN_MARKER = "container=podman"


def _engine_env(config: dict[str, Any], baked: set[str]) -> set[str]:
    """The environment entries Podman adds itself, which a learner's run line never had."""
    env = [str(item) for item in config.get("Env") or []]
    if _PODMAN_MARKER not in env:
        return set()
    added = {_PODMAN_MARKER, "TERM=xterm", f"HOSTNAME={config.get('Hostname') or ''}"}
    if not any(item.startswith("HOME=") for item in baked):
        # Set from the image user's passwd entry; a learner's own -e HOME=... looks the same.
        added |= {item for item in env if item.startswith("HOME=")}
    return added


# ------------------------------------------------------------------------------ fixes


def _crash_fix(spec: RunSpec, logs: list[str], exit_code: int | None) -> Fix:
    error = next((line for line in reversed(logs) if "error" in line.lower()), logs[-1] if logs else "")
    for line in logs:
        match = _ENV_HINT.search(line)
        if match:
            env = dict(spec.env)
            env[match.group(1)] = match.group(2)
            return Fix(
                f"The app exited (code {exit_code}) saying: {error.strip()} -- set "
                f"{match.group(1)} as its log suggests.",
                run=spec.replace(env=tuple(env.items())),
            )
    return Fix(
        f"The app exited (code {exit_code}). Read the last log lines: {error.strip() or '(no output)'}; "
        "fix what they name, then run it again.",
        config_change="whatever setting the log names as missing or wrong",
    )


def _publish_fix(spec: RunSpec, port: int | None) -> Fix:
    if port is None:
        return Fix(
            "Nothing listens inside yet and nothing is published: find the app's port "
            "(EXPOSE in its Dockerfile, or its docs) and publish it with -p HOST:CONTAINER."
        )
    mapping = PortMapping(port, "tcp", "127.0.0.1", port)
    return Fix(
        f"Publish the container port with -p: -p 127.0.0.1:{port}:{port} (127.0.0.1 keeps it "
        "private to this machine; drop it to share it on the network).",
        run=spec.replace(publish=(*spec.publish, mapping)),
    )


def _remap_fix(spec: RunSpec, wrong: int, right: int | None, *, reason: str = "") -> Fix:
    if right is None:
        return Fix(f"Nothing listens on container port {wrong}: check which port the app uses.")
    remapped = tuple(
        PortMapping(right, m.protocol, m.host_ip, m.host_port, m.host_port_end)
        if m.container_port == wrong
        else m
        for m in spec.publish
    )
    if reason == "wrong_service":
        return Fix(
            f"Container port {wrong} is another service; yours listens on {right}. Keep the host "
            f"port, change the container port: -p HOST:{right}.",
            run=spec.replace(publish=remapped),
        )
    return Fix(
        f"The app listens on container port {right}, not {wrong}: keep the host port and change "
        f"the container side of -p to {right}.",
        run=spec.replace(publish=remapped),
    )


def _retried_fix(spec: RunSpec, wanted: int, actual: int, retried: int) -> Fix:
    remapped = tuple(
        PortMapping(actual, m.protocol, m.host_ip, m.host_port, m.host_port_end)
        if m.container_port == wanted
        else m
        for m in spec.publish
    )
    return Fix(
        f"Port {retried} was taken inside the container, so Jupyter moved to {actual} (its log says "
        f"'already in use, trying another port'). Publish {actual}, or free {retried}.",
        run=spec.replace(publish=remapped),
        config_change="c.ServerApp.port_retries = 0  # fail loudly instead of moving",
    )


def _loopback_fix(spec: RunSpec, attrs: dict[str, object], wanted: Expect) -> Fix:
    env = dict(spec.env)
    loopback_vars = [name for name, value in env.items() if value in _LOOPBACK_VALUES]
    if loopback_vars:
        for name in loopback_vars:
            env[name] = "0.0.0.0"
        name = loopback_vars[0]
        return Fix(
            f"Bind every interface: set {name}=0.0.0.0 instead of {dict(spec.env)[name]}.",
            run=spec.replace(env=tuple(env.items())),
            config_change=f"{name}=0.0.0.0",
        )
    if wanted == "jupyter":
        command = tuple(arg for arg in spec.command if not arg.startswith(("--ip=", "--ServerApp.ip=")))
        return Fix(
            "Make Jupyter listen on every interface inside the container: pass --ServerApp.ip=0.0.0.0 "
            "after the image name, or set it in the image's config and rebuild.",
            run=spec.replace(command=(*command, "--ServerApp.ip=0.0.0.0")),
            config_change='c.ServerApp.ip = ""  # in jupyter_server_config.py: every interface',
        )
    return Fix(
        "Make the app listen on 0.0.0.0 (every interface) instead of 127.0.0.1: find its bind or "
        "host setting.",
        config_change="bind address 0.0.0.0 instead of 127.0.0.1",
    )


def _starting_fix(spec: RunSpec, running_for: float | None) -> Fix:
    since = f" (it started {running_for:.1f} s ago)" if running_for is not None else ""
    return Fix(
        f"Wait for readiness{since}: poll until it answers (portbinding.probe.wait_until_ready), or "
        "add a HEALTHCHECK and wait for `healthy` -- a running container is not a ready server.",
        run=spec,
    )


__all__ = [
    "CAUSES",
    "CAUSE_LAYER",
    "LAYERS",
    "LAYER_TITLE",
    "SUMMARY",
    "Cause",
    "Diagnosis",
    "Evidence",
    "Expect",
    "Fix",
    "Layer",
    "diagnose",
    "look_inside",
    "spec_from_container",
]
