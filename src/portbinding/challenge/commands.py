"""The few docker commands a learner can type into the challenge widget's command box.

A lesson page has no terminal of its own, so the widget runs the commands a fix needs --
``docker run`` (checked by the course policy), ``docker rm``, ``start``, ``stop``, ``restart``,
joined with ``&&`` as hint 3 writes them -- through the Engine API, and prints what the docker
CLI would. It only touches this challenge's own containers (those labelled with its id: the
broken one, what holds its port, what this box started); anything else is refused with the
advice to use a terminal, where the real CLI has no such limits. ``curl URL`` is one probe.
"""

from __future__ import annotations

import shlex

from docker.models.containers import Container

from portbinding.challenge.core import Challenge
from portbinding.challenge.rungs import curl_says
from portbinding.challenge.stage import CHALLENGE_LABEL, create, start
from portbinding.command import COURSE_IMAGES, PROGRAMS, parse_run
from portbinding.errors import ContainerNotFound, PortBindingError, PortInUse
from portbinding.probe import probe_http

SUPPORTED = "docker run / rm / start / stop / restart and curl, joined with &&"
_TERMINAL = "for anything else, open a terminal (JupyterLab: File > New > Terminal) and type it there"


def run_commands(challenge: Challenge, line: str) -> str:
    """Run ``line`` (``A && B && ...``); stops at the first that fails, like a shell. Returns the output."""
    if not line.strip():
        raise PortBindingError("Type a command first.", hint=f"this box runs {SUPPORTED}")
    outputs: list[str] = []
    for part in line.split("&&"):
        try:
            outputs.append(_run_one(challenge, shlex.split(part)))
        except PortBindingError as error:
            shown = "\n".join(outputs)
            raise PortBindingError(f"{shown}\n{error.message}".strip(), hint=error.hint) from error
    challenge.note_fix(via="widget")
    return "\n".join(outputs)


def _run_one(challenge: Challenge, words: list[str]) -> str:
    if not words:
        raise PortBindingError("An empty command between two &&.", hint=f"this box runs {SUPPORTED}")
    if words[0] == "curl":
        urls = [w for w in words[1:] if w.startswith("http")]
        if not urls:
            raise PortBindingError("curl needs a URL here.", hint=f"e.g. curl {challenge.url}")
        return curl_says(probe_http(urls[-1], timeout=3.0))
    if words[0] not in PROGRAMS or len(words) < 2:
        raise PortBindingError(
            f"This box cannot run {' '.join(words)!r}.", hint=f"it runs {SUPPORTED}; {_TERMINAL}"
        )
    verb, rest = words[1], words[2:]
    if verb == "run":
        return _run(challenge, words)
    names = [w for w in rest if not w.startswith("-")]
    if verb not in ("rm", "start", "stop", "restart") or not names:
        raise PortBindingError(
            f"This box cannot run {' '.join(words)!r}.", hint=f"it runs {SUPPORTED}; {_TERMINAL}"
        )
    done = []
    for name in names:
        container = _ours(challenge, name)
        engine = challenge.engine
        if verb == "rm":
            engine.remove(container)
        elif verb == "stop":
            engine.stop(container, timeout=1)
        elif verb == "restart":
            engine.stop(container, timeout=1)
            start(engine, container, keep_if_port_taken=True)
        else:
            start(engine, container, keep_if_port_taken=True)
        # `docker rm` without -f would refuse a running container; removing it anyway is what was meant.
        error = _start_error(challenge, container) if verb in ("start", "restart") else ""
        if error:
            raise PortBindingError(
                f"Error response from daemon: {error}\nError: failed to start containers: {name}"
            )
        done.append(name)
    return "\n".join(done)


def _run(challenge: Challenge, words: list[str]) -> str:
    spec = parse_run(words, allowed_images=(*COURSE_IMAGES, challenge.attempt.image))
    container = create(challenge.engine, spec.replace(detach=True), challenge_id=challenge.id, name=spec.name)
    try:
        start(challenge.engine, container)
    except PortInUse as error:
        raise PortBindingError(
            f"docker: Error response from daemon: {error.message}",
            hint="something already publishes that host port: `docker ps` shows what, "
            "`docker rm -f NAME` frees it",
        ) from error
    return str(container.id)


def _ours(challenge: Challenge, name: str) -> Container:
    try:
        container = challenge.engine.get(name)
    except ContainerNotFound as error:
        raise PortBindingError(f"Error response from daemon: No such container: {name}") from error
    if (container.labels or {}).get(CHALLENGE_LABEL) != challenge.id:
        raise PortBindingError(
            f"{name} is not one of this challenge's containers, so this box leaves it alone.",
            hint=f"{_TERMINAL} (`docker rm -f {name}`)",
        )
    return container


def _start_error(challenge: Challenge, container: Container) -> str:
    state = challenge.engine.state(container)
    return "" if state.get("Status") == "running" else str(state.get("Error") or "")
