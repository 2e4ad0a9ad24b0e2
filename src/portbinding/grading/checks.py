"""The checks exercise tests call: ``check_fix``, ``check_cause``, ``check_config``, ``check_image``,
``check_compose``, ``check_compose_file``.

Each sends the learner's answer to be *run* and returns a ``CheckResult`` whose message says
what was expected, what was observed and what to do next.

Where the answer runs:

* Under autograde, inside the grading sandbox, ``PORTBINDING_GRADING_DOOR`` names the door's
  socket: the request goes there, and only there. The sandbox has no engine socket and no
  network, so there is no other way to a container.
* On a learner's own machine (no door, not autograding), the same checks run in-process on the
  learner's own engine -- their computer, their containers -- with the same policy, limits,
  labels and removal, so running the tests locally leaves nothing behind.
* Autograding *without* the door means the grader forgot the sandbox; the checks then refuse
  to touch any engine (fail closed) and say so, rather than run learner-chosen containers
  with the grader's privileges.

Imports only the standard library at module level: it is loaded inside the sandbox.
"""

from __future__ import annotations

import base64
import os
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from portbinding.grading.protocol import (
    CLIENT_TIMEOUT_S,
    DOOR_ENV,
    MAX_REPLY_BYTES,
    CheckResult,
    ProtocolError,
    read_line,
    send_line,
)

# Explicit opt-in for running checks on the local engine under nbgrader *without* the sandbox
# (benchmarks, an instructor validating their own sources). Never set it for learners' work.
UNSANDBOXED_ENV = "PORTBINDING_GRADING_UNSANDBOXED"
CONTEXT_SKIP_SUFFIXES = (".ipynb",)
MAX_CONTEXT_FILES = 20
MAX_FILE_BYTES = 256_000


def check_fix(
    line: object,
    *,
    container_port: int,
    expect: str = "jupyter",
    path: str = "/api",
    images: Iterable[str] = (),
    host_port: int | None = None,
    occupied_host_ports: Iterable[int] = (),
    private: bool = False,
    random_host_port: bool = False,
    port_query: object = None,
) -> CheckResult:
    """Run the learner's ``docker run`` ``line`` and check that it serves ``path`` on ``container_port``.

    ``expect`` is ``"jupyter"`` (GET /api answers Jupyter's ``{"version": …}``) or ``"http"`` (any
    2xx/3xx). ``images`` restricts which course image the question is about. ``host_port`` is
    the host port the question asks for (None: any). ``occupied_host_ports`` are really busy
    while the line runs. ``private`` requires the server to be unreachable from the network
    (published on 127.0.0.1 only). ``random_host_port`` requires the engine to choose the host
    port, and ``port_query`` (a ``docker port NAME PORT`` line) must find it.
    """
    return _call({
        "kind": "check_run", "line": line, "container_port": container_port, "expect": expect, "path": path,
        "images": list(images), "host_port": host_port, "occupied_host_ports": list(occupied_host_ports),
        "private": private, "random_host_port": random_host_port, "port_query": port_query,
    })  # fmt: skip


def check_cause(
    cause: object, *, line: str, container_port: int, expect: str = "jupyter", path: str = "/api"
) -> CheckResult:
    """Run the question's ``line``, diagnose it, and check that ``cause`` is what the evidence shows.

    ``cause`` is one of the five causes the course teaches. A wrong cause fails with what each
    layer showed (state, published ports, listeners), not with the right cause's name.
    """
    return _call({
        "kind": "check_cause", "cause": cause, "line": line, "container_port": container_port,
        "expect": expect, "path": path,
    })  # fmt: skip


def check_config(line: object, *, image: str, path: str = "/api") -> CheckResult:
    """Append the learner's config ``line`` to ``image``'s Jupyter config, rebuild, run and probe it."""
    return _call({"kind": "check_config", "line": line, "image": image, "path": path})


def check_image(
    context: str | os.PathLike[str] | Mapping[str, str | bytes] = ".", *, path: str = "/health"
) -> CheckResult:
    """Build the learner's Dockerfile and app (a folder, or a name -> content mapping) and probe it.

    The image is run with ``-e PORT=<a port the grader picks>`` published on a free host port;
    it passes when GET ``path`` answers 2xx/3xx through that port.
    """
    try:
        files = _read_context(context)
    except ValueError as error:
        return CheckResult(False, "invalid", str(error))
    encoded = {name: base64.b64encode(data).decode("ascii") for name, data in files.items()}
    return _call({"kind": "check_image", "files": encoded, "path": path})


def check_compose(
    compose: object, *, service: str, container_port: int, path: str = "/health", database: bool = False
) -> CheckResult:
    """Run the learner's Compose file (text) as graded containers and ask ``service`` for ``path``.

    The file is read by the course policy (course images, no host network, no volumes, quoted
    ports, ...), each service runs on a network made for this check, under its service name,
    in depends_on order; ``service`` must answer GET ``path`` with 200 through the port that
    publishes ``container_port`` -- and, with ``database``, say ``"database": "ok"``. The
    result's ``details`` also say what the file publishes and waits for, as written.
    """
    return _call({
        "kind": "check_compose", "compose": compose, "service": service, "container_port": container_port,
        "path": path, "database": database,
    })  # fmt: skip


def check_compose_file(
    compose: object, *, service: str, published: str | None = None, waits: Mapping[str, str] | None = None
) -> CheckResult:
    """Judge the learner's Compose file (text) as written, outside the notebook's kernel.

    ``published``: ``"loopback"`` (every ``ports:`` entry on 127.0.0.1 or ::1, at least one) or
    ``"nowhere"`` (no ``ports:``). ``waits``: the services ``service`` must wait for, with their
    ``depends_on`` condition (``{"db": "service_healthy"}``).
    """
    return _call({
        "kind": "check_compose_file", "compose": compose, "service": service, "published": published,
        "waits": None if waits is None else dict(waits),  # as written: the cross-check compares it
    })  # fmt: skip


def _call(request: dict[str, Any]) -> CheckResult:
    door = os.environ.get(DOOR_ENV)
    if door:
        return _ask_door(door, request)
    if _grading_unsandboxed():
        return CheckResult(
            False,
            "grader_error",
            (
                "This notebook is being autograded without the Port Binding Lab grading sandbox, so the "
                "check refuses to start containers with the grader's privileges. Instructors: grade with "
                "`portbinding grade ASSIGNMENT`, or keep grader/nbgrader_config.py's sandboxed Execute step."
            ),
        )
    return _run_locally(request)


def _grading_unsandboxed() -> bool:
    """True when nbgrader executes this notebook for grading, outside the course's sandbox.

    nbgrader sets ``NBGRADER_EXECUTION=autograde`` while autograding, and ``validate`` (with
    ``NBGRADER_VALIDATING=1``) for ``nbgrader validate`` -- the student's own Validate button,
    which runs on their machine and must run their visible checks on their own engine, as
    running the cells does. Any other value is refused: fail closed. (This stops the course's
    checks from using a grader's engine; it is not the boundary around learner code -- the
    sandbox is.)
    """
    execution = os.environ.get("NBGRADER_EXECUTION")
    if not execution or os.environ.get(UNSANDBOXED_ENV) == "1":
        return False
    validating = execution == "validate" and os.environ.get("NBGRADER_VALIDATING") == "1"
    return not validating


def _ask_door(path: str, request: dict[str, Any]) -> CheckResult:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10.0)
            sock.connect(path)
            send_line(sock, request)
            return CheckResult.from_dict(read_line(sock, limit=MAX_REPLY_BYTES, timeout=CLIENT_TIMEOUT_S))
    except (OSError, ProtocolError, TypeError, ValueError) as error:
        return CheckResult(
            False,
            "grader_error",
            f"The check could not reach the grader ({error}); this is a "
            "problem on the grading machine, not in your answer.",
        )


def _run_locally(request: dict[str, Any]) -> CheckResult:
    """A learner's own machine: the same judge, in-process, on their own engine."""
    import json

    from portbinding.engine import Engine
    from portbinding.errors import EngineUnavailable
    from portbinding.grading.judge import Judge

    try:
        # Round-trip through JSON so a local check sees exactly what the door would.
        payload = json.loads(json.dumps(request))
    except (TypeError, ValueError) as error:
        return CheckResult(False, "invalid", f"The answer cannot be sent to the grader: {error}.")
    try:
        engine = Engine.connect(owner="check")
    except EngineUnavailable as error:
        return CheckResult(
            False,
            "grader_error",
            f"No container engine answers on this computer, so the check cannot run your answer: {error}",
        )
    with engine:  # removes every container of this check's session on the way out
        return Judge(engine).handle(payload)


def _read_context(context: str | os.PathLike[str] | Mapping[str, str | bytes]) -> dict[str, bytes]:
    """The build context's files: a folder's regular files (not notebooks, not hidden), or a mapping."""
    if isinstance(context, Mapping):
        return {
            str(name): data.encode() if isinstance(data, str) else bytes(data)
            for name, data in context.items()
        }
    folder = Path(context)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder: expected the folder with your Dockerfile and app.")
    files: dict[str, bytes] = {}
    for entry in sorted(folder.iterdir()):
        # Symlinks are skipped: only files the learner wrote go into the image.
        if entry.name.startswith(".") or entry.is_symlink() or not entry.is_file():
            continue
        if entry.suffix in CONTEXT_SKIP_SUFFIXES:
            continue
        if entry.stat().st_size > MAX_FILE_BYTES:
            raise ValueError(
                f"{entry.name} is larger than {MAX_FILE_BYTES // 1000} kB; move it out of the folder."
            )
        files[entry.name] = entry.read_bytes()
        if len(files) > MAX_CONTEXT_FILES:
            raise ValueError(
                f"The folder has more than {MAX_CONTEXT_FILES} files; keep only the Dockerfile and app."
            )
    return files
