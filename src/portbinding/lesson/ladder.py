"""``ask_rung``: the learner names the command for a rung; the lesson runs it and says whether it fits.

Lesson 02 gives the learner every command; lesson 03 asks for them. For each rung the learner
writes the command they would type (``rung = "docker port wrong-1"``). If it answers that rung's
question it runs as it is; if it does not (``docker logs`` for "is the port published?"), or the
learner left it empty, the lesson says why and runs a command that does -- the one the diagnosis
itself names for that evidence (``LearnerCommands``). A command that would change something
(``docker rm``, ``docker run``) never runs from here: rungs only look.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Callable
from dataclasses import dataclass

from docker.models.containers import Container

from portbinding.diagnose.ladder import LAYER_QUESTION, LAYER_TITLE, LAYERS, Expect, Layer, LearnerCommands
from portbinding.engine import Engine
from portbinding.errors import PortBindingError
from portbinding.lesson.predict import Reaction
from portbinding.lesson.terminal import Shown, split_commands, terminal
from portbinding.probe import probe_http, wait_for
from portbinding.widgets._live import wait_listening

# What a command must look like to answer each rung's question (program, then its words).
_DOCKER = ("docker", "podman")


def _verb(words: list[str]) -> str:
    rest = words[1:]
    if rest[:1] == ["container"]:
        rest = rest[1:]
    return rest[0] if rest else ""


def _looks_inside(words: list[str], *, wants: Callable[[str], bool]) -> bool:
    return words[0] in _DOCKER and _verb(words) == "exec" and any(wants(word) for word in words[2:])


FITS: dict[Layer, Callable[[list[str]], bool]] = {
    "state": lambda w: w[0] in _DOCKER and _verb(w) in ("ps", "ls", "inspect", "logs", "top", "stats"),
    "published": lambda w: w[0] in _DOCKER and _verb(w) in ("port", "ps", "ls", "inspect"),
    "listening": lambda w: _looks_inside(w, wants=lambda x: "/proc/net/tcp" in x or x in ("ss", "netstat")),
    "inside": lambda w: _looks_inside(w, wants=lambda x: "urlopen" in x or x in ("curl", "wget", "python3")),
    "host": lambda w: w[0] in ("curl", "wget", "http", "nc"),
}
WHY_NOT: dict[Layer, str] = {
    "state": "This rung asks whether the container runs: docker ps -a (its STATUS) or docker logs.",
    "published": "This rung asks which host port leads to which container port: docker port (or the PORTS "
    "column of docker ps).",
    "listening": "This rung asks what listens *inside*: the container's own socket table, "
    "docker exec NAME cat /proc/net/tcp (ss or netstat where the image has them).",
    "inside": "This rung asks whether the server answers from *inside* its own network namespace: "
    "docker exec NAME with a request (python3, or curl where the image has it).",
    "host": "This rung asks what answers from your machine: a real request, curl -v URL.",
}
_CHANGES = ("run", "rm", "stop", "start", "restart", "kill", "create", "exec -d")


def reference_command(
    layer: Layer,
    container: str,
    *,
    url: str,
    target: str,
    path: str = "/",
    expect: Expect = "http",
    program: str = "docker",
) -> str:
    """A command that answers ``layer``'s question about ``container`` (the diagnosis' own words)."""
    said = LearnerCommands(container, program)
    if layer == "state":
        return said.ps()
    if layer == "published":
        return said.port()
    if layer == "listening":
        return said.listeners()
    if layer == "inside":
        return said.request_inside(target, path=path, expect=expect)
    return LearnerCommands.request_from_host(url, expect=expect)


def ask_rung(
    command: object,
    layer: Layer,
    container: str,
    *,
    url: str,
    target: str,
    path: str = "/",
    expect: Expect = "http",
) -> Asked:
    """React to the learner's ``command`` for ``layer``, then run it if it fits (else a fitting one).

    ``target`` is ``host:port`` inside the container for the "inside" rung; ``url`` is what the
    "host" rung asks. Prints the reaction, then the command and its output, as a terminal would.
    """
    if layer not in LAYERS:
        raise ValueError(f"no rung called {layer!r}")
    fallback = reference_command(layer, container, url=url, target=target, path=path, expect=expect)
    question = f"Rung {LAYERS.index(layer) + 1}, {LAYER_TITLE[layer]}: {LAYER_QUESTION[layer]}"
    typed = "" if command is None or command is Ellipsis else str(command).strip()
    if not typed:
        return _run(Reaction("none", (question, "You left it empty; a command that answers it:")), fallback)
    try:
        commands = split_commands(typed)
    except Exception as error:  # a command the lesson cannot read: say so, run one that works
        return _run(Reaction("wrong", (question, f"{error}", "A command that answers it:")), fallback)
    words = commands[0]
    if len(commands) > 1 or (words[0] in _DOCKER and _verb(words) in _CHANGES):
        why = "That would change things; a rung only looks."
        return _run(Reaction("wrong", (question, why, WHY_NOT[layer], "So the lesson runs:")), fallback)
    if layer != "host" and not any(container in word for word in words):
        said = f"That command is about another container; this one is {container}."
        return _run(Reaction("wrong", (question, said, "So the lesson runs:")), fallback)
    if FITS[layer](words):
        return _run(Reaction("right", (question, "That command answers it:")), typed)
    said = f"{shlex.join(words[:3])} ... does not answer this rung."
    return _run(Reaction("wrong", (question, said, WHY_NOT[layer], "So the lesson runs:")), fallback)


@dataclass(frozen=True)
class Asked:
    """The lesson's reaction to the command a learner named for a rung, and what then ran."""

    reaction: Reaction
    shown: Shown

    def _ipython_display_(self) -> None:
        """Nothing: ``ask_rung`` printed both already."""


def _run(reaction: Reaction, line: str) -> Asked:
    print(reaction)
    return Asked(reaction, terminal(line))


def try_fix(
    line: object,
    *,
    replaces: str,
    url: str,
    fallback: str,
    engine: Engine | None = None,
    wait_s: float = 90.0,
) -> Asked:
    """Run the learner's fix ``line`` in place of the container ``replaces``, then ask ``url``.

    The old container goes first (it holds the name and the host port the fix keeps). The fix
    counts when a real request to ``url`` answers; otherwise the lesson says what it saw, removes
    what the line started, and runs ``fallback`` (the diagnosis' own line) so the lesson goes on.
    """
    if engine is None:
        from portbinding.widgets.session import lesson_engine

        engine = lesson_engine()
    typed = "" if line is None or line is Ellipsis else str(line).strip()
    _remove(engine, replaces)
    if not typed:
        print(Reaction("none", ("You did not write a fix; the lesson runs the diagnosis' own line:",)))
        return Asked(Reaction("none", ()), _start_and_ask(engine, fallback, url, wait_s)[1])
    started, asked = _start_and_ask(engine, typed, url, wait_s)
    if asked.outcome == "answers":
        reaction = Reaction("right", (f"Your line works: {url} answers.",))
        print(reaction)
        return Asked(reaction, asked)
    reaction = Reaction(
        "wrong",
        (
            f"Your line ran, but {url} does not answer ({asked.outcome}).",
            "Keep the host port the URL uses, and make the container side of -p the port the app "
            "listens on inside (rung 3 showed it). The lesson now runs the diagnosis' own line:",
        ),
    )
    print(reaction)
    if started is not None:
        with contextlib.suppress(PortBindingError):
            engine.remove(started)
    _remove(engine, replaces)
    return Asked(reaction, _start_and_ask(engine, fallback, url, wait_s)[1])


def _remove(engine: Engine, name: str) -> None:
    with contextlib.suppress(PortBindingError):
        engine.remove(engine.get(name))


def _start_and_ask(engine: Engine, line: str, url: str, wait_s: float) -> tuple[Container | None, Shown]:
    shown = terminal(line, engine=engine)
    started = shown.container
    if started is not None:
        wait_listening(engine, started, timeout=wait_s)
        # A server that listens is not yet one that answers: give it the moments Jupyter needs.
        wait_for(lambda: probe_http(url, timeout=2.0), timeout=30, alive=lambda: engine.is_running(started))
    return started, terminal(f"curl -fsS --max-time 3 {url}", engine=engine)
