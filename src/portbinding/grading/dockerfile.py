"""Building a learner's image safely: a tiny Dockerfile policy, and a build with no network.

A Dockerfile is a program the engine runs as root at build time (``RUN``), and it can
download (``ADD https://…``, ``FROM`` anything). The exercises never need either: the app uses
the standard library only, so ``COPY`` + ``CMD`` on the course's Python base is enough. The
policy therefore allows only instructions that describe the image, never ones that execute
or fetch, and the build itself runs with networking disabled, memory limits, a size-capped
context and a deadline. The built image is labelled with the grading session and removed by
the caller.
"""

from __future__ import annotations

import io
import logging
import re
import tarfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import requests.exceptions

from portbinding.builder import has_image
from portbinding.errors import EngineUnavailable, ImageBuildError, ImageMissing, PolicyError
from portbinding.images import DEFAULT_BASE, LOCAL_BASE

LOGGER = logging.getLogger(__name__)

# What learners write (the official images) and what the course builds locally; all of them
# are built on the grader's own copy of the base, because no registry may be reachable.
_PYTHON_FROM = re.compile(
    r"(docker\.io/(library/)?)?python(:3(\.\d+)*(-slim)?(-(bookworm|bullseye|trixie))?)?"
)
_COURSE_FROM = {LOCAL_BASE, "portbinding/python-base"}
GRADING_BASE = "portbinding/grading-base:1"

ALLOWED = ("FROM", "COPY", "ENV", "EXPOSE", "CMD", "ENTRYPOINT", "WORKDIR", "USER", "HEALTHCHECK", "ARG",
           "STOPSIGNAL")  # fmt: skip
_WHY_NOT = {
    "RUN": "runs commands while the image is built, which the grader never does; the app uses only "
    "Python's standard library, so COPY and CMD are all it needs",
    "ADD": "can download files from the network; use COPY for files next to the Dockerfile",
    "VOLUME": "declares storage the grader does not provide",
    "ONBUILD": "schedules build steps for other images",
    "SHELL": "changes the shell for RUN steps, which the grader does not run",
    "MAINTAINER": "is deprecated, and the grader's image carries no author",
    "LABEL": "sets labels, and the grader's own labels on graded images and containers (the grading "
    "session, the course) must be the only ones",
}
# A plain user: a uid from 1 (no sign, no leading zero, no variable) or a name, optionally :group.
# Anything else may well mean root at run time ("00", "+0", "$U"); the grader also forces a
# non-root uid when it runs the image, but the Dockerfile should say what it means.
_PLAIN_ID = r"(?:[1-9][0-9]{0,9}|[a-z_][a-z0-9_-]{0,31})"
_PLAIN_USER = re.compile(rf"{_PLAIN_ID}(?::{_PLAIN_ID})?")
MAX_DOCKERFILE_BYTES = 20_000
MAX_INSTRUCTIONS = 60
NOBODY = "65534:65534"

_base_lock = threading.Lock()


@dataclass(frozen=True)
class Instruction:
    """One logical Dockerfile line: its keyword, the rest, and where it started."""

    keyword: str
    arguments: str
    line: int


def parse(text: str) -> list[Instruction]:
    """Split a Dockerfile into instructions: comments dropped, ``\\`` continuations joined."""
    if len(text.encode()) > MAX_DOCKERFILE_BYTES:
        raise PolicyError(
            f"The Dockerfile is longer than {MAX_DOCKERFILE_BYTES // 1000} kB.",
            hint="A Dockerfile for this exercise needs about ten lines.",
        )
    lines = text.splitlines()
    if lines and re.match(r"\s*#\s*(syntax|escape|check)\s*=", lines[0], re.IGNORECASE):
        raise PolicyError(
            "The Dockerfile starts with a parser directive (# syntax=/# escape=), which the "
            "grader does not accept.",
            hint="Delete the first line.",
        )
    instructions: list[Instruction] = []
    pending = ""
    start = 0
    for number, raw in enumerate(lines, start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comments inside a continued instruction are skipped, as Docker does
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        pending += stripped
        keyword, _, arguments = pending.partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip(), start))
        pending = ""
    if pending.strip():
        keyword, _, arguments = pending.strip().partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip(), start))
    for item in instructions:
        # Rewritten, a trailing \ would join the grader's next line (its USER) to this one.
        if item.arguments.endswith("\\"):
            raise PolicyError(
                f"Line {item.line}: the instruction ends with a \\ but no line continues it.",
                hint="Remove the \\ at the end of the last line.",
            )
    if len(instructions) > MAX_INSTRUCTIONS:
        raise PolicyError(
            f"The Dockerfile has {len(instructions)} instructions; the grader accepts at most "
            f"{MAX_INSTRUCTIONS}.",
            hint="Keep it to FROM, COPY, ENV, EXPOSE, USER and CMD.",
        )
    return instructions


def check_and_rewrite(text: str, *, base: str) -> str:
    """The Dockerfile the grader builds: ``text`` checked against the policy, FROM set to ``base``.

    Raises PolicyError naming the line and why it is not allowed. Without a USER instruction
    the image is made to run as nobody, so a learner's container never runs as root.
    """
    instructions = parse(text)
    if not instructions:
        raise PolicyError("The Dockerfile is empty.", hint="Start it with FROM python:3.12-slim.")
    first = instructions[0]
    if first.keyword != "FROM":
        raise PolicyError(
            f"Line {first.line}: the first instruction is {first.keyword}, expected FROM.",
            hint="Start with FROM python:3.12-slim (ARG before FROM is not accepted).",
        )
    has_user = False
    out: list[str] = []
    for item in instructions:
        if item.keyword not in ALLOWED:
            why = _WHY_NOT.get(item.keyword, "is not one the grader accepts")
            raise PolicyError(
                f"Line {item.line}: {item.keyword} {why}.",
                hint=f"Use only {', '.join(ALLOWED)}."
                if item.keyword not in _WHY_NOT
                else "Remove that line.",
            )
        if item.keyword == "FROM":
            if item is not first:
                raise PolicyError(
                    f"Line {item.line}: a second FROM (a multi-stage build) is not needed here.",
                    hint="Use one FROM line.",
                )
            out.append(_rewrite_from(item, base=base))
            continue
        if item.keyword == "COPY" and re.search(r"--from\b", item.arguments):
            raise PolicyError(
                f"Line {item.line}: COPY --from copies out of another image; copy files "
                "next to the Dockerfile instead.",
                hint="Write COPY app.py /app/app.py.",
            )
        if item.keyword == "USER":
            if not _PLAIN_USER.fullmatch(item.arguments) or "root" in item.arguments.split(":"):
                raise PolicyError(
                    f"Line {item.line}: USER {item.arguments} may run the app as root (the grader accepts "
                    "a plain user: a number from 1, or a name other than root), and a web service never "
                    "needs root.",
                    hint="Write USER 1000 (any non-root user).",
                )
            has_user = True
        out.append(f"{item.keyword} {item.arguments}")
    if not has_user:
        out.append(f"USER {NOBODY}")  # the grader never runs a learner's image as root
    return "\n".join(out) + "\n"


def _rewrite_from(item: Instruction, *, base: str) -> str:
    words = item.arguments.split()
    if not words or words[0].startswith("--"):
        raise PolicyError(
            f"Line {item.line}: FROM {item.arguments} is not accepted.", hint="Write FROM python:3.12-slim."
        )
    image = words[0]
    if not (_PYTHON_FROM.fullmatch(image) or image in _COURSE_FROM):
        raise PolicyError(
            f"Line {item.line}: FROM {image} is not a base image the grader has: expected the official "
            f"Python image (python:3.12-slim) or the course base ({LOCAL_BASE}).",
            hint="Write FROM python:3.12-slim.",
        )
    rest = words[1:]
    if rest and not (len(rest) == 2 and rest[0].lower() == "as"):
        raise PolicyError(
            f"Line {item.line}: expected FROM IMAGE [AS NAME].", hint="Write FROM python:3.12-slim."
        )
    return " ".join(["FROM", base, *rest])


# --------------------------------------------------------------------------------------- base


def ensure_grading_base(client: docker.DockerClient) -> str:
    """The image learners' Dockerfiles are built on; built once from the course base if needed.

    The official python image already has a ``python`` command. The course's Debian base only
    has ``python3``, and a learner's ``CMD ["python", "app.py"]`` must work the same on the
    grader, so a derived base adds the ``python`` alias (a trusted build, run once).
    """
    if has_image(client, DEFAULT_BASE):
        return DEFAULT_BASE
    with _base_lock:
        if has_image(client, GRADING_BASE):
            return GRADING_BASE
        if not has_image(client, LOCAL_BASE):
            raise ImageMissing(
                f"Neither {DEFAULT_BASE} nor the course base {LOCAL_BASE} is on the grading engine, so "
                "learners' Dockerfiles cannot be built.",
                hint="run `portbinding images build` on the grading machine once",
            )
        dockerfile = (
            f"FROM {LOCAL_BASE}\n"
            "RUN [ -e /usr/bin/python ] || ln -s python3 /usr/bin/python\n"
            "LABEL portbinding.image=grading-base\n"
        )
        build(client, dockerfile=dockerfile, files={}, tag=GRADING_BASE, labels={}, timeout=120.0)
    return GRADING_BASE


# -------------------------------------------------------------------------------------- build


def build(
    client: docker.DockerClient,
    *,
    dockerfile: str,
    files: Mapping[str, bytes],
    tag: str,
    labels: Mapping[str, str],
    timeout: float,
) -> str:
    """Build ``dockerfile`` with ``files`` as the context; return the image id.

    No network (``network_mode=none``), memory and CPU limits on the build containers, and a
    deadline. Raises ImageBuildError with the last lines of the build log on failure.
    """
    context = _tar({**files, "Dockerfile": dockerfile.encode()})
    deadline = time.monotonic() + timeout
    log: list[str] = []
    image_id = ""
    try:
        stream: Any = client.api.build(
            fileobj=io.BytesIO(context), custom_context=True, tag=tag, labels=dict(labels),
            network_mode="none", rm=True, forcerm=True, pull=False, decode=True, timeout=int(timeout) + 5,
            container_limits={"memory": 512 * 2**20, "memswap": 512 * 2**20, "cpushares": 512},
        )  # fmt: skip
        for chunk in stream:
            if time.monotonic() > deadline:
                stream.close()  # closing the request cancels the build in the engine
                raise ImageBuildError(
                    f"The image build did not finish within {timeout:g} s.",
                    hint="keep the Dockerfile to FROM, COPY, ENV, EXPOSE, USER and CMD",
                )
            if "stream" in chunk:
                log.extend(line for line in str(chunk["stream"]).splitlines() if line.strip())
            if "aux" in chunk and isinstance(chunk["aux"], dict):
                image_id = str(chunk["aux"].get("ID", image_id))
            if "error" in chunk:
                raise ImageBuildError(
                    "The image did not build: "
                    + str(chunk["error"]).strip()
                    + ("\n  " + "\n  ".join(log[-6:]) if log else ""),
                    hint="read the build error above; paths in COPY are relative to the Dockerfile's folder",
                )
    except docker.errors.APIError as exc:
        raise ImageBuildError(
            f"The engine refused the build: {exc.explanation or exc}",
            hint="check the Dockerfile's instructions",
        ) from exc
    except (requests.exceptions.RequestException, docker.errors.DockerException, OSError) as exc:
        raise EngineUnavailable(f"The grading engine stopped answering during a build ({exc}).") from exc
    return image_id or str(client.images.get(tag).id)


def _tar(files: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def remove_image(client: docker.DockerClient, tag: str) -> None:
    """Remove an image the grader built; one already gone is fine."""
    try:
        client.images.remove(tag, force=True)
    except docker.errors.ImageNotFound:
        return
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        LOGGER.warning("could not remove the graded image %s: %s", tag, exc)
