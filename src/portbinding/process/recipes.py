"""What a course image runs, read from its Dockerfile, for the process engine.

Only the final stage matters: its ENV (with ARG defaults and the image's build args
substituted), WORKDIR, ENTRYPOINT, CMD, EXPOSE and the COPY lines that bring files from the
build context. ``COPY --from=`` (the Jupyter venv) is not needed: the process runs with the
course's own Python environment, which has Jupyter Server.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from portbinding.images import IMAGES, LOCAL_BASE, ImageDef, images_dir

_INSTRUCTION = re.compile(r"^\s*([A-Za-z]+)\s+(.*)$")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Recipe:
    """One image as the process engine runs it."""

    reference: str
    tags: tuple[str, ...]
    folder: Path
    env: dict[str, str]
    workdir: str
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    exposed: tuple[int, ...]
    copies: tuple[tuple[tuple[str, ...], str], ...]  # (context sources, destination)
    labels: dict[str, str] = field(default_factory=dict)


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        if raw.lstrip().startswith("#") and not pending:
            continue
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        lines.append(pending + raw)
        pending = ""
    found = []
    for line in lines:
        match = _INSTRUCTION.match(line)
        if match:
            found.append((match.group(1).upper(), match.group(2).strip()))
    return found


def _expand(value: str, scope: dict[str, str]) -> str:
    return _VARIABLE.sub(lambda m: scope.get(m.group(1) or m.group(2), ""), value)


def _words(arguments: str) -> tuple[str, ...]:
    """An exec-form (JSON) or shell-form instruction as argv."""
    if arguments.startswith("["):
        return tuple(str(word) for word in json.loads(arguments))
    return ("/bin/sh", "-c", arguments) if arguments else ()


def _pairs(arguments: str) -> dict[str, str]:
    """``ENV A=1 B=2`` (and the legacy ``ENV A 1``) as a dict."""
    words = shlex.split(arguments)
    if words and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    return dict(word.split("=", 1) for word in words)


def recipe_for(image: ImageDef) -> Recipe:
    """Read ``image``'s Dockerfile into a Recipe."""
    build_args = dict(image.buildargs)
    scope: dict[str, str] = {}
    env: dict[str, str] = {}
    workdir = "/"
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    exposed: list[int] = []
    copies: list[tuple[tuple[str, ...], str]] = []
    for instruction, arguments in _instructions((image.folder / "Dockerfile").read_text()):
        if instruction == "FROM":  # a new stage starts afresh; the last one is the image
            env, workdir, entrypoint, cmd, exposed, copies = {}, "/", (), (), [], []
            scope = {k: v for k, v in scope.items() if k in build_args}
        elif instruction == "ARG":
            name, _, default = arguments.partition("=")
            scope[name] = build_args.get(name, default)
        elif instruction == "ENV":
            for name, value in _pairs(arguments).items():
                env[name] = _expand(value, {**scope, **env})
        elif instruction == "WORKDIR":
            workdir = _expand(arguments, {**scope, **env})
        elif instruction == "ENTRYPOINT":
            entrypoint, cmd = _words(arguments), ()  # Docker resets CMD when ENTRYPOINT is set
        elif instruction == "CMD":
            cmd = _words(arguments)
        elif instruction == "EXPOSE":
            exposed += [int(word.split("/")[0]) for word in arguments.split()]
        elif instruction == "COPY" and "--from=" not in arguments:
            *sources, destination = shlex.split(arguments)
            copies.append((tuple(sources), destination))
    env.pop("PATH", None)  # the image's PATH names its venv; the process uses the course's
    return Recipe(
        reference=image.reference,
        tags=image.tags,
        folder=image.folder,
        env=env,
        workdir=workdir,
        entrypoint=entrypoint,
        cmd=cmd,
        exposed=tuple(exposed),
        copies=tuple(copies),
        labels={"portbinding.image": image.name, "org.opencontainers.image.title": image.name},
    )


def base_recipe() -> Recipe:
    """The course's base image (Debian's Python): here, the course's Python with nothing added."""
    return Recipe(
        reference=LOCAL_BASE,
        tags=(LOCAL_BASE,),
        folder=images_dir(),
        env={"LANG": "C.UTF-8", "PYTHON_VERSION": f"{sys.version_info.major}.{sys.version_info.minor}"},
        workdir="/",
        entrypoint=(),
        cmd=("python3",),
        exposed=(),
        copies=(),
        labels={"portbinding.image": "python-base"},
    )


def recipes() -> dict[str, Recipe]:
    """Every course image (and the base they build on), by each of its tags."""
    found: dict[str, Recipe] = {LOCAL_BASE: base_recipe()}
    for image in IMAGES:
        recipe = recipe_for(image)
        for tag in image.tags:
            found[tag] = recipe
    return found


def find(reference: str, catalogue: dict[str, Recipe]) -> Recipe | None:
    """The recipe for ``reference``; a reference without a tag means ``:latest`` as in Docker."""
    last = reference.rsplit("/", 1)[-1]
    if ":" not in last:
        reference += ":latest"
    return catalogue.get(reference)
