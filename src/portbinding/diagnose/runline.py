"""The run line that would recreate a container: what a fix starts from and changes.

Course containers come back as a :class:`~portbinding.command.RunSpec` (image, name, ports,
environment, command: everything the course's policy allows). A learner's own container may have
been started with more -- ``--network host``, ``--restart always``, ``--sysctl``, volumes, an
entrypoint -- and a fix that silently dropped those would recreate a different container, so
:class:`RunLine` carries them beside the spec and prints them back. Anything else the engine
knows (devices, capabilities, resource limits) is not carried: the fix says so where it matters.
"""

from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass
from typing import Any

from portbinding.command import RunSpec
from portbinding.engine import NAMED_LABEL
from portbinding.ports import from_bindings

# Network modes an engine picks by itself when no --network is given (Docker, Podman rootful and
# rootless): a run line leaves them out.
_DEFAULT_NETWORKS = frozenset({"", "default", "bridge", "slirp4netns", "pasta", "private"})

# Podman puts this in every container's environment (Docker adds nothing): the way to tell.
_PODMAN_MARKER = "container=podman"


@dataclass(frozen=True)
class RunLine:
    """A ``docker run`` line: the course-expressible :class:`RunSpec` plus the options beyond it."""

    spec: RunSpec
    network: str | None = None
    restart: str | None = None
    sysctls: tuple[tuple[str, str], ...] = ()
    volumes: tuple[str, ...] = ()
    user: str | None = None
    entrypoint: tuple[str, ...] | None = None
    # The image's own command (CMD), which the line leaves out: a fix that must change the
    # command (an address it binds) starts from it. Not printed.
    image_command: tuple[str, ...] = ()

    @property
    def command(self) -> tuple[str, ...]:
        """The command the container runs: the line's own, else the image's."""
        return self.spec.command or self.image_command

    @property
    def extras(self) -> bool:
        """Whether the line needs options a course RunSpec cannot hold."""
        return any((self.network, self.restart, self.sysctls, self.volumes, self.user, self.entrypoint))

    def to_spec(self) -> RunSpec | None:
        """The line as a course RunSpec, or None when it needs options a RunSpec cannot hold."""
        return None if self.extras else self.spec

    def to_argv(self, *, program: str = "docker") -> list[str]:
        argv = self.spec.to_argv(program=program)
        command = list(self.spec.command)
        image_at = len(argv) - 1 - len(command)
        extra: list[str] = []
        if self.network:
            extra += ["--network", self.network]
        if self.restart:
            extra += ["--restart", self.restart]
        for key, value in self.sysctls:
            extra += ["--sysctl", f"{key}={value}"]
        for volume in self.volumes:
            extra += ["-v", volume]
        if self.user:
            extra += ["--user", self.user]
        if self.entrypoint is not None:
            # --entrypoint takes one program; the rest of an exec-form entrypoint leads the command.
            extra += ["--entrypoint", self.entrypoint[0] if self.entrypoint else ""]
            command = [*self.entrypoint[1:], *command]
        return [*argv[:image_at], *extra, self.spec.image, *command]

    def to_cli(self, *, program: str = "docker") -> str:
        """The line a learner pastes, every word shell-quoted."""
        return " ".join(shlex.quote(word) for word in self.to_argv(program=program))

    def with_spec(self, **changes: Any) -> RunLine:
        """A copy whose spec has some fields changed (image, publish, env, command, ...)."""
        return dataclasses.replace(self, spec=self.spec.replace(**changes))

    def replace(self, **changes: Any) -> RunLine:
        return dataclasses.replace(self, **changes)


def run_line_from_container(attrs: dict[str, Any], *, image_config: dict[str, Any] | None = None) -> RunLine:
    """The line that would recreate this container, leaving out what the image or engine supplies."""
    image_config = image_config or {}
    config = _section(attrs, "Config")
    host = _section(attrs, "HostConfig")
    network = str(host.get("NetworkMode") or "")
    policy = host.get("RestartPolicy") if isinstance(host.get("RestartPolicy"), dict) else {}
    assert isinstance(policy, dict)
    restart = str(policy.get("Name") or "")
    retries = int(policy.get("MaximumRetryCount") or 0)
    if restart == "on-failure" and retries:
        restart = f"on-failure:{retries}"
    entrypoint = _words(config.get("Entrypoint"))
    user = str(config.get("User") or "")
    return RunLine(
        spec=spec_from_container(attrs, image_config=image_config),
        network=None if network in _DEFAULT_NETWORKS else network,
        restart=None if restart in ("", "no") else restart,
        sysctls=tuple(sorted((str(k), str(v)) for k, v in (host.get("Sysctls") or {}).items())),
        volumes=tuple(str(bind) for bind in host.get("Binds") or []),
        user=None if user == str(image_config.get("User") or "") else user,
        entrypoint=None if entrypoint == _words(image_config.get("Entrypoint")) else tuple(entrypoint),
        image_command=tuple(_words(image_config.get("Cmd"))),
    )


def spec_from_container(attrs: dict[str, Any], *, image_config: dict[str, Any] | None = None) -> RunSpec:
    """The course run line that would recreate this container (image, name, ports, env, command).

    What the image already provides is left out: environment variables and a command equal to
    the image's own. A name the engine made up is left out too (the course labels the
    containers it names).
    """
    config = _section(attrs, "Config")
    host = _section(attrs, "HostConfig")
    publish = from_bindings(host.get("PortBindings") or {})
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


def _section(attrs: dict[str, Any], key: str) -> dict[str, Any]:
    value = attrs.get(key)
    return value if isinstance(value, dict) else {}


def _words(value: object) -> list[str]:
    """An exec-form list as a list; some engines give a lone string (or null) instead."""
    if isinstance(value, list):
        return [str(word) for word in value]
    return [str(value)] if value else []


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
