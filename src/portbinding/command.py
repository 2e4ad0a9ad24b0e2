"""A learner's ``docker run …`` line, checked against the course policy.

``parse_run`` reads the line the way the Docker CLI would (POSIX shell words, pflag-style
options) but accepts only the few options the lab needs and only the course images. The line
is never handed to a shell: ``RunSpec.to_argv`` gives an argument list, and ``to_cli`` quotes
every word, so ``; rm -rf /`` or ``$(reboot)`` stay plain words.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from portbinding.errors import PolicyError
from portbinding.images import course_repositories, split_image_ref
from portbinding.ports import PortMapping, parse_publish

# The repositories the course builds (portbinding.images.IMAGES), e.g. "portbinding/notebook"
# and the lesson's literal "scoring-api": the only images a learner's run line may name.
COURSE_IMAGES: tuple[str, ...] = course_repositories()

PROGRAMS: tuple[str, ...] = ("docker", "podman")

# The same pattern the Docker engine checks container names against (minus an optional leading "/").
_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
# Environment variable names a shell can use; Docker itself is laxer, but anything else is a typo here.
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_ALIAS = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,62})")

_BOOL_LONG = {
    "--detach": "detach",
    "--rm": "remove",
    "--interactive": "interactive",
    "--tty": "tty",
    "--publish-all": "publish_all",
}
_BOOL_SHORT = {"d": "detach", "i": "interactive", "t": "tty", "P": "publish_all"}
_VALUE_LONG = {"--publish": "publish", "--env": "env", "--name": "name"}
_VALUE_SHORT = {"p": "publish", "e": "env"}
_SHORT_ALIASES = {"v": "--volume", "u": "--user", "w": "--workdir"}

_SHARES_NAMESPACE = "would share a namespace of your computer with the container and remove its isolation"
_REFUSED = {
    "--privileged": "gives the container full control of your computer; publishing a port never needs it",
    "--volume": "would share folders of your computer with the container; the lab images already "
    "contain everything they need",
    "--mount": "would mount folders or volumes into the container; the lab images already contain "
    "everything they need",
    "--volumes-from": "would share another container's folders with this one; the lab does not need it",
    "--network": "changes the container's network; with --network host, -p is ignored, and this lab "
    "is about publishing ports with -p",
    "--net": "changes the container's network; with --net host, -p is ignored, and this lab is about "
    "publishing ports with -p",
    "--pid": _SHARES_NAMESPACE,
    "--ipc": _SHARES_NAMESPACE,
    "--uts": _SHARES_NAMESPACE,
    "--userns": _SHARES_NAMESPACE,
    "--cgroupns": _SHARES_NAMESPACE,
    "--cap-add": "gives the container extra privileges (Linux capabilities) it does not need",
    "--device": "gives the container direct access to a device of your computer",
    "--user": "runs the container as another user; that is not needed, and root is never allowed",
    "--security-opt": "would weaken the container's security profile",
    "--add-host": "changes name resolution inside the container; the lab uses IP addresses and ports",
    "--dns": "changes name resolution inside the container; the lab uses IP addresses and ports",
    "--entrypoint": "replaces the program the image starts; the lab images must start their own server",
    "--sysctl": "changes kernel settings for the container",
    "--tmpfs": "mounts an extra file system into the container; the lab does not need one",
    "--workdir": "changes the folder the image starts in; the lab images already start in the right one",
    "--gpus": "gives the container access to graphics cards, which the lab does not use",
    "--runtime": "changes how the engine runs containers",
    "--init": "adds an init process to the container; the lab images do not need one",
}
_SUPPORTED = "-p/--publish, -P/--publish-all, -e/--env, --name, -d/--detach, --rm, -i, -t"
_NETWORK_LONG = {
    "--network": "network",
    "--net": "network",
    "--network-alias": "alias",
    "--net-alias": "alias",
    "--add-host": "add_host",
}
HOST_GATEWAY = "host.docker.internal:host-gateway"
_NOT_A_NETWORK = {"none": "leaves the container without a network: nothing could reach it"}


@dataclass(frozen=True)
class RunSpec:
    """What a ``docker run`` line asks for, limited to what the course allows."""

    image: str
    name: str | None = None
    publish: tuple[PortMapping, ...] = ()
    publish_all: bool = False
    env: tuple[tuple[str, str], ...] = ()
    detach: bool = False
    remove: bool = False
    interactive: bool = False
    tty: bool = False
    command: tuple[str, ...] = ()
    network: str | None = None  # lesson 07: a user-defined network, or host; never none or container:
    aliases: tuple[str, ...] = ()  # --network-alias: more names it answers to on that network
    host_gateway: bool = False  # --add-host=host.docker.internal:host-gateway (lesson 07)

    def to_argv(self, *, program: str = "docker") -> list[str]:
        """The canonical argument list, ``[program, "run", …]``, for subprocess (never a shell)."""
        argv = [program, "run"]
        for flag, wanted in (("-d", self.detach), ("--rm", self.remove), ("-i", self.interactive)):
            if wanted:
                argv.append(flag)
        if self.tty:
            argv.append("-t")
        if self.name is not None:
            argv += ["--name", self.name]
        for mapping in self.publish:
            argv += ["-p", mapping.to_spec()]
        if self.publish_all:
            argv.append("-P")
        if self.network is not None:
            argv += ["--network", self.network]
        for alias in self.aliases:
            argv += ["--network-alias", alias]
        if self.host_gateway:
            argv.append(f"--add-host={HOST_GATEWAY}")
        for key, value in self.env:
            argv += ["-e", f"{key}={value}"]
        return [*argv, self.image, *self.command]

    def to_cli(self, *, program: str = "docker") -> str:
        """The canonical command line, every word shell-quoted; ``parse_run`` reads it back unchanged."""
        return " ".join(shlex.quote(word) for word in self.to_argv(program=program))

    def replace(self, **changes: Any) -> RunSpec:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)


def parse_run(
    cmd: str | list[str], *, allowed_images: Collection[str] | None = None, networks: bool = False
) -> RunSpec:
    """Parse a learner's ``docker run``/``podman run``/``docker container run`` line.

    ``cmd`` is one line (split like a POSIX shell, never run by one) or an argument list.
    ``networks`` lets lesson 07's options through: ``--network NAME`` (a user-defined network,
    or ``host`` -- the tempting non-fix it shows; never ``none`` or another container's),
    ``--network-alias``, and ``--add-host=host.docker.internal:host-gateway`` (that value only).
    Raises PolicyError for anything the course does not allow, naming what and why, and
    PortSpecError for a ``-p`` value Docker would reject.
    """
    allowed = tuple(COURSE_IMAGES if allowed_images is None else allowed_images)
    words = _split(cmd) if isinstance(cmd, str) else list(cmd)
    args = _strip_program(words, allowed=allowed)
    fields: dict[str, Any] = {}
    publish: list[PortMapping] = []
    env: list[tuple[str, str]] = []

    aliases: list[str] = []

    def take(kind: str, value: str) -> None:
        if kind == "publish":
            publish.extend(parse_publish(value))
        elif kind == "env":
            env.append(_parse_env(value))
        elif kind == "network":
            fields["network"] = _check_network(value)
        elif kind == "alias":
            aliases.append(_check_alias(value))
        elif kind == "add_host":
            if value != HOST_GATEWAY:
                raise PolicyError(
                    f"--add-host {value} is not one this course uses: only --add-host={HOST_GATEWAY}, the "
                    "name by which a container reaches your computer.",
                    hint=f"write --add-host={HOST_GATEWAY}",
                )
            fields["host_gateway"] = True
        else:
            fields["name"] = _check_name(value, allowed=allowed)

    index = 0
    while index < len(args):
        word = args[index]
        if word == "--":
            index += 1
            break
        if word.startswith("--"):
            flag, has_value, value = word.partition("=")
            if networks and flag in _NETWORK_LONG:
                if not has_value:
                    value = _next_value(args, index, flag=flag, allowed=allowed)
                    index += 1
                take(_NETWORK_LONG[flag], value)
            elif flag in _VALUE_LONG:
                if not has_value:
                    value = _next_value(args, index, flag=flag, allowed=allowed)
                    index += 1
                take(_VALUE_LONG[flag], value)
            elif flag in _BOOL_LONG and not has_value:
                fields[_BOOL_LONG[flag]] = True
            else:
                raise _refusal(flag, typed=word, allowed=allowed)
        elif word.startswith("-") and word != "-":
            # Short flags combine as in pflag (-itd); a value flag ends the group and takes the rest of
            # the word or the next word as its value (-dp8888:8888, -dp 8888:8888).
            for position in range(1, len(word)):
                letter = word[position]
                if letter in _VALUE_SHORT:
                    value = word[position + 1 :]
                    if len(value) > 1 and value[0] == "=":  # pflag reads -p=8888:8888 as -p 8888:8888
                        value = value[1:]
                    if not value:
                        value = _next_value(args, index, flag=f"-{letter}", allowed=allowed)
                        index += 1
                    take(_VALUE_SHORT[letter], value)
                    break
                if letter not in _BOOL_SHORT:
                    raise _refusal(f"-{letter}", typed=word, allowed=allowed)
                fields[_BOOL_SHORT[letter]] = True
        else:
            break
        index += 1

    if index >= len(args):
        raise PolicyError(
            "The command names no image: expected the image after the options.",
            hint=f"Put the image last, e.g. {_example(allowed)}.",
        )
    image = _check_image(args[index], allowed=allowed)
    if aliases and fields.get("network") in (None, "host"):
        raise PolicyError(
            "--network-alias gives the container another name on a network, but the command names no "
            "--network.",
            hint="Add --network NAME (a network made with docker network create) before the image.",
        )
    return RunSpec(
        image=image,
        publish=tuple(publish),
        env=tuple(env),
        command=tuple(args[index + 1 :]),
        aliases=tuple(aliases),
        **fields,
    )


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as error:
        if "quotation" in str(error):
            problem = "has a quote (' or \") that is never closed"
        else:
            problem = "ends with a backslash that escapes nothing"
        raise PolicyError(
            f"The command {problem}, so it cannot be split into words.",
            hint="Close every quote you open, e.g. --ServerApp.ip='' or --ServerApp.ip=\"\".",
        ) from None


def _strip_program(words: list[str], *, allowed: tuple[str, ...]) -> list[str]:
    """Check the leading ``docker run``/``podman run``/``docker container run``; return what follows."""
    example = _example(allowed)
    if not words:
        raise PolicyError("The command is empty: expected a docker run line.", hint=f"Type e.g. {example}.")
    program = words[0]
    if program == "sudo":
        raise PolicyError(
            "The command starts with sudo: the course never needs administrator rights.",
            hint=f"Leave sudo out: {example}.",
        )
    if program not in PROGRAMS:
        raise PolicyError(
            f"The command starts with '{program}': expected docker or podman.",
            hint=f"Start the line with docker run, e.g. {example}.",
        )
    if words[1:2] == ["run"]:
        return words[2:]
    if words[1:3] == ["container", "run"]:
        return words[3:]
    sub = " ".join(words[1:3]) if words[1:2] == ["container"] else " ".join(words[1:2])
    observed = f"'{program} {sub}'" if sub else f"'{program}' on its own"
    raise PolicyError(
        f"The course only starts containers with '{program} run', but the command is {observed}.",
        hint=f"Write a run command, e.g. {example}.",
    )


def _next_value(args: list[str], index: int, *, flag: str, allowed: tuple[str, ...]) -> str:
    if index + 1 >= len(args):
        raise PolicyError(
            f"{flag} needs a value after it, but the command ends there.",
            hint=f"Give the value and then the image, e.g. {_example(allowed)}.",
        )
    return args[index + 1]


def _refusal(flag: str, *, typed: str, allowed: tuple[str, ...]) -> PolicyError:
    long_name = _SHORT_ALIASES.get(flag[1:], flag) if not flag.startswith("--") else flag
    shown = flag if long_name == flag else f"{flag} ({long_name})"
    if long_name in _REFUSED:
        return PolicyError(
            f"The option {shown} is not allowed in this course: it {_REFUSED[long_name]}.",
            hint=f"Remove {flag} and run again, e.g. {_example(allowed)}.",
        )
    if long_name in _BOOL_LONG:
        return PolicyError(
            f"The option {long_name} takes no value here, but the command has '{typed}'.",
            hint=f"Write {long_name} on its own.",
        )
    where = "" if typed == flag else f" (in '{typed}')"
    return PolicyError(
        f"The option {flag}{where} is not one this course supports: expected only {_SUPPORTED}.",
        hint=f"Remove {flag}; a typical line is {_example(allowed)}.",
    )


def _parse_env(value: str) -> tuple[str, str]:
    key, has_value, text = value.partition("=")
    if not has_value:
        raise PolicyError(
            f"-e {shlex.quote(value)} has no value: '-e KEY' alone copies KEY from your own environment, "
            "which the course does not do.",
            hint=f"Write -e {value or 'KEY'}=VALUE.",
        )
    if not _ENV_KEY.fullmatch(key):
        raise PolicyError(
            f"'{key}' is not a usable environment variable name: expected letters, digits and _, "
            "not starting with a digit.",
            hint="Write e.g. -e JUPYTER_TOKEN=secret.",
        )
    return key, text


def _check_name(name: str, *, allowed: tuple[str, ...]) -> str:
    if not _NAME.fullmatch(name):
        raise PolicyError(
            f"'{name}' is not a valid container name: Docker expects at least two characters, letters "
            "and digits first, then letters, digits, '_', '.' or '-'.",
            hint=f"Choose a name such as lab-notebook: {_example(allowed, name='lab-notebook')}.",
        )
    return name


def _check_network(name: str) -> str:
    if name in _NOT_A_NETWORK:
        raise PolicyError(
            f"--network {name} is not allowed in this course: it {_NOT_A_NETWORK[name]}.",
            hint="Use a network of your own: docker network create appnet, then --network appnet.",
        )
    if name == "host":
        return name  # lesson 07 runs it to show what it does (the diagnosis names it: host_network)
    if name.startswith("container:") or not _NAME.fullmatch(name):
        raise PolicyError(
            f"'{name}' is not a network this course runs containers on: expected the name of a "
            "user-defined network (letters and digits first, then letters, digits, '_', '.' or '-').",
            hint="Create one with docker network create appnet, then use --network appnet.",
        )
    return name


def _check_alias(alias: str) -> str:
    if not _ALIAS.fullmatch(alias):
        raise PolicyError(
            f"'{alias}' is not a usable network alias: expected a host name (letters, digits, '-', '.').",
            hint="Choose a short name such as db or api: --network-alias db.",
        )
    return alias


def _check_image(image: str, *, allowed: tuple[str, ...]) -> str:
    repository, tag = split_image_ref(image)
    if image not in allowed and repository not in allowed:
        listed = ", ".join(allowed) if allowed else "(none)"
        raise PolicyError(
            f"The image '{image}' is not one of the course images: expected one of {listed}.",
            hint=f"Use a course image, optionally with a tag, e.g. {_example(allowed)}.",
        )
    if tag is not None and not _TAG.fullmatch(tag):
        raise PolicyError(
            f"'{tag}' after the ':' in '{image}' is not a valid image tag: expected letters, digits, "
            "'_', '.' or '-'.",
            hint=f"Leave the tag out ({repository}) or write one such as {repository}:latest.",
        )
    return image


def _example(allowed: tuple[str, ...], *, name: str | None = None) -> str:
    image = allowed[0] if allowed else COURSE_IMAGES[0]
    naming = f"--name {name} " if name else ""
    return f"docker run -d {naming}-p 8888:8888 {image}"
