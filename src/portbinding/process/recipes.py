"""What a course image runs, read from its Dockerfile, for the process engine.

Only the final stage matters: its ENV (with ARG defaults and the image's build args
substituted), WORKDIR, ENTRYPOINT, CMD, EXPOSE and the COPY lines that bring files from the
build context. ``COPY --from=`` (the Jupyter venv) is not needed: the process runs with the
course's own Python environment, which has Jupyter Server.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from portbinding.images import IMAGES, LOCAL_BASE, ImageDef, tagged

_INSTRUCTION = re.compile(r"^\s*([A-Za-z]+)\s+(.*)$")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Recipe:
    """One image as the process engine runs it."""

    reference: str
    tags: tuple[str, ...]
    ident: str  # what the engine calls its image id (sha256:...)
    env: dict[str, str]
    workdir: str
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    exposed: tuple[int, ...]
    copies: tuple[tuple[Path, str], ...]  # (a file on this machine, where the image has it)
    labels: dict[str, str] = field(default_factory=dict)


class RecipeError(ValueError):
    """A Dockerfile the process engine cannot follow (it says which line, and why)."""


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


def from_dockerfile(
    text: str,
    context: Path,
    *,
    tags: tuple[str, ...],
    build_args: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    catalogue: dict[str, Recipe] | None = None,
) -> Recipe:
    """Follow a Dockerfile: its last stage, on a base the engine knows or on plain Python.

    A FROM naming an image in ``catalogue`` (a lesson's "FROM portbinding/notebook-loopback")
    starts from that recipe; any other base (``python:3.12-slim``, a build stage) is the
    course's Python itself. RUN cannot be followed: the process engine has no image to run it in.
    """
    build_args = build_args or {}
    scope: dict[str, str] = {}
    state = _blank()
    for instruction, arguments in _instructions(text):
        expanded = _expand(arguments, {**scope, **state.env})
        if instruction == "FROM":
            base = find(_expand(arguments.split()[0], scope), catalogue or {})
            state = _from(base)
            scope = {k: v for k, v in scope.items() if k in build_args}
        elif instruction == "ARG":
            name, _, default = arguments.partition("=")
            scope[name] = build_args.get(name, default)
        elif instruction == "ENV":
            for name, value in _pairs(arguments).items():
                state.env[name] = _expand(value, {**scope, **state.env})
        elif instruction == "WORKDIR":
            state.workdir = expanded
        elif instruction == "ENTRYPOINT":
            state.entrypoint, state.cmd = _words(arguments), ()  # Docker resets CMD here
        elif instruction == "CMD":
            state.cmd = _words(arguments)
        elif instruction == "EXPOSE":
            state.exposed += [int(word.split("/")[0]) for word in expanded.split()]
        elif instruction == "LABEL":
            state.labels.update(_pairs(expanded))
        elif instruction == "COPY" and "--from=" not in arguments:
            *sources, destination = [w for w in shlex.split(expanded) if not w.startswith("--")]
            for source in sources:
                path = (context / source).resolve()
                if not path.exists() or context.resolve() not in (path, *path.parents):
                    raise RecipeError(f"COPY {source}: no such file in the build context")
                into_folder = destination.endswith("/") or len(sources) > 1
                if path.is_dir():  # Docker copies a folder's contents, not the folder
                    folder = destination.rstrip("/") + "/"
                    state.copies += [(f, folder + str(f.relative_to(path))) for f in _files(path)]
                else:
                    state.copies.append((path, destination + path.name if into_folder else destination))
        elif instruction == "RUN" and state.from_known:
            raise RecipeError(
                f"RUN {arguments[:60]}: the process engine cannot run commands while building "
                "(there is no container engine here); it follows COPY, ENV, CMD, ENTRYPOINT, "
                "EXPOSE, WORKDIR, LABEL and USER"
            )
    state.env.pop("PATH", None)  # an image's PATH names its venv; the process uses the course's
    return Recipe(
        reference=tags[0],
        tags=tags,
        ident="sha256:" + hashlib.sha256(f"{context}:{tags}:{text}".encode()).hexdigest(),
        env=state.env,
        workdir=state.workdir,
        entrypoint=state.entrypoint,
        cmd=state.cmd,
        exposed=tuple(dict.fromkeys(state.exposed)),
        copies=tuple(state.copies),
        labels={**state.labels, **(labels or {})},
    )


def _files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file())


@dataclass
class _State:
    """The image as a Dockerfile's instructions so far have made it."""

    env: dict[str, str]
    workdir: str
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    exposed: list[int]
    copies: list[tuple[Path, str]]
    labels: dict[str, str]
    from_known: bool  # on a course image: its RUN lines ran when Docker built it, ours cannot


def _blank() -> _State:
    return _State({}, "/", (), (), [], [], {}, False)


def _from(base: Recipe | None) -> _State:
    if base is None:
        return _blank()
    return _State(
        dict(base.env),
        base.workdir,
        base.entrypoint,
        base.cmd,
        list(base.exposed),
        list(base.copies),
        dict(base.labels),
        True,
    )


def recipe_for(image: ImageDef) -> Recipe:
    """Read a course image's Dockerfile into a Recipe."""
    return from_dockerfile(
        (image.folder / "Dockerfile").read_text(),
        image.folder,
        tags=image.tags,
        build_args=dict(image.buildargs),
        labels={"portbinding.image": image.name, "org.opencontainers.image.title": image.name},
    )


def base_recipe() -> Recipe:
    """The course's base image (Debian's Python): here, the course's Python with nothing added."""
    return Recipe(
        reference=LOCAL_BASE,
        tags=(LOCAL_BASE,),
        ident="sha256:" + hashlib.sha256(LOCAL_BASE.encode()).hexdigest(),
        env={"LANG": "C.UTF-8", "PYTHON_VERSION": f"{sys.version_info.major}.{sys.version_info.minor}"},
        workdir="/",
        entrypoint=(),
        cmd=("python3",),
        exposed=(),
        copies=(),
        labels={"portbinding.image": "python-base"},
    )


def recipes() -> dict[str, Recipe]:
    """Every course image the process engine can run (and the base they build on), by each tag.

    Images that run something other than the course's Python (nginx, Redis) are left out:
    :func:`unavailable` says why, for the engine's "No such image" answer.
    """
    found: dict[str, Recipe] = {LOCAL_BASE: base_recipe()}
    for image in IMAGES:
        if image.not_on_process_engine:
            continue
        recipe = recipe_for(image)
        for tag in image.tags:
            found[tag] = recipe
    return found


def unavailable(reference: str) -> str:
    """Why a course image cannot run here ("" when it is not one the process engine leaves out)."""
    wanted = tagged(reference)
    image = next((i for i in IMAGES if wanted in i.tags and i.not_on_process_engine), None)
    if image is None:
        return ""
    return (
        f"{reference} is a course image the process engine cannot run: {image.not_on_process_engine}. "
        "Run this part on Docker or Podman (on Binder, read it instead)."
    )


def find(reference: str, catalogue: dict[str, Recipe]) -> Recipe | None:
    """The recipe for ``reference``; a reference without a tag means ``:latest`` as in Docker."""
    return catalogue.get(tagged(reference))
