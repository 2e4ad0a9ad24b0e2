"""The engine's failures, in a learner's words: what each error means and what to do next.

:class:`engine.Engine` turns every docker-py and transport error into one of the course's
errors here, so a learner never reads a traceback; the low-level error stays chained
(``raise ... from``) for whoever debugs it.
"""

from __future__ import annotations

import re

import docker
import docker.errors
import paramiko
import requests.exceptions

from portbinding.command import RunSpec
from portbinding.errors import ContainerFailed, EngineStopped, PortInUse

# paramiko.SSHException: an ssh:// engine whose connection dropped and could not be made again.
ENGINE_ERRORS = (
    docker.errors.DockerException,
    requests.exceptions.RequestException,
    OSError,
    paramiko.SSHException,
)


def create_error(spec: RunSpec, exc: docker.errors.APIError) -> ContainerFailed:
    """The course error for a create the engine refused (a name in use, most often)."""
    text = explanation(exc)
    if "already in use" in text and spec.name:
        return ContainerFailed(
            f"A container called {spec.name!r} already exists.",
            hint=f"remove it (`docker rm -f {spec.name}`) or choose another --name",
        )
    return ContainerFailed(
        f"The engine refused to create the container: {text}", hint="check the run line, then try again"
    )


def explanation(exc: docker.errors.APIError) -> str:
    """What the engine said, without docker-py's wrapping."""
    return str(getattr(exc, "explanation", None) or exc)


def conflicting_port(text: str, spec: RunSpec) -> int:
    """The host port named in the engine's error, else the first fixed host port of the spec."""
    match = re.search(r"(?:0\.0\.0\.0|\]|[\d.]+):(\d+)", text) or re.search(r"port (\d+)", text)
    if match:
        return int(match.group(1))
    fixed = [m.host_port for m in spec.publish if m.host_port]
    return fixed[0] if fixed else 0


# What the low-level error says, in words: (text to look for, what it means for the learner).
_STOPPED_WHY: tuple[tuple[tuple[str, ...], str], ...] = (
    (("FileNotFoundError", "No such file"), "its socket is gone: the engine is not running"),
    (("ConnectionRefused", "Connection refused"), "nothing listens on its socket: the engine is not running"),
    (("timed out", "Timeout"), "it did not reply in time: it may be busy, frozen or shutting down"),
    (
        ("Connection aborted", "RemoteDisconnected", "Connection reset", "Connection broken"),
        "it hung up in the middle of a request: it was stopped or restarted",
    ),
)


def engine_stopped(exc: BaseException) -> EngineStopped:
    """The course error for an engine that stopped answering mid-session, in plain words.

    The low-level error stays chained (``raise ... from``) for whoever debugs it.
    """
    text = f"{type(exc).__name__}: {exc}"
    why = next((words for needles, words in _STOPPED_WHY if any(n in text for n in needles)), "")
    return EngineStopped(
        "The container engine stopped answering"
        + (f" ({why})" if why else "")
        + ". Containers it was running have probably stopped with it.",
        hint="start it again -- `portbinding doctor --install` on Debian as root, or start Docker "
        "Desktop / `sudo systemctl start docker` -- then run the command again",
    )


def moved_to_free_port(spec: RunSpec, error: PortInUse) -> RunSpec:
    """``spec`` with the host port the engine refused replaced by the error's free suggestion.

    Only the mappings on the taken port move (every fixed one, when the engine did not name it).
    """
    if error.suggestion is None:
        raise ValueError("the PortInUse error suggests no free port")
    taken = {m.host_port for m in spec.publish if m.host_port == error.port} or {
        m.host_port for m in spec.publish if m.host_port
    }
    publish = tuple(
        m.with_host_port(error.suggestion) if m.host_port in taken and m.host_port else m
        for m in spec.publish
    )
    return spec.replace(publish=publish)
