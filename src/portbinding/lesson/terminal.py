"""``terminal(line)``: a command as typed in a terminal, run from a lesson cell, shown as a terminal shows it.

A lesson cell reads ``terminal("docker port nb-1 8888")`` and prints ``$ docker port nb-1 8888``
then the program's own output. Where the program is installed and can reach the lesson's engine
it really runs (the docker CLI is pointed at the same engine with DOCKER_HOST; ``curl`` runs on
this machine), so the notebook and a terminal never disagree. Where it cannot -- no docker CLI
(Binder), the course's process engine, which the docker CLI does not drive -- the same evidence
is read through the engine's API and printed in the CLI's format, under a line that says so and
what to type on a machine that has the CLI.

Two exceptions, said in the output: ``docker run`` goes through the course's engine (the course
policy checks the line, and the container is labelled so ``end_lesson()`` removes it), and so do
``rm``/``stop``/``start``/``restart`` (only the lesson's own containers, by name); ``network`` and
``compose`` lines are policy-checked too. Other docker verbs run only when they look (ps, port,
logs, inspect, exec, ...); the rest (kill, prune, rmi, ...) are for a real terminal. ``A && B``
runs like a shell runs it: B only when A succeeded. No pipes, no redirections: those are for a
real terminal.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from dataclasses import dataclass
from typing import Any, Literal

from docker.models.containers import Container

from portbinding.command import parse_run
from portbinding.diagnose.ladder import cli_program
from portbinding.engine import Engine
from portbinding.errors import ContainerFailed, ContainerNotFound, PortBindingError
from portbinding.host import run_as_typed
from portbinding.lesson.services import compose_command, network_command
from portbinding.ports import bracket_host
from portbinding.probe import ProbeResult, probe_http, probe_tcp

CLI_TIMEOUT_S = 20.0
MAX_LINES = 60  # a terminal scrolls; a notebook cell should not
# curl's exit codes, as the lessons name them (52 and 56 are one situation: accepted, then dropped).
CURL_OUTCOME = {0: "answers", 7: "refused", 52: "reset", 56: "reset", 28: "timeout", 6: "unresolved"}
_MUTATING = ("run", "rm", "stop", "start", "restart")
# What the docker CLI may run as typed: it only looks (exec runs inside the lesson's container).
_LOOKING = (
    "ps",
    "ls",
    "port",
    "logs",
    "inspect",
    "exec",
    "top",
    "stats",
    "images",
    "version",
    "--version",
    "info",
)

Via = Literal["cli", "engine"]


@dataclass(frozen=True)
class Shown:
    """One command as it ran: the line, what it printed, its exit status, and how it ran."""

    line: str
    output: str
    exit_code: int
    via: Via  # "cli": the real program; "engine": the course's engine stood in for it
    container: Container | None = None  # what a `docker run` started

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def outcome(self) -> str | None:
        """For ``curl``: ``answers``, ``refused``, ``reset``, ``timeout`` (from its exit status)."""
        if not self.line.startswith("curl"):
            return None
        if "telnet://" in self.line:  # a bare TCP connect: curl only sees the handshake
            return "connects" if self.exit_code == 0 else CURL_OUTCOME.get(self.exit_code, "fails")
        return CURL_OUTCOME.get(self.exit_code, f"curl exit {self.exit_code}")

    def text(self) -> str:
        return f"$ {self.line}\n{self.output}".rstrip()

    def _ipython_display_(self) -> None:
        """Nothing: ``terminal()`` printed it already (a cell ending in ``terminal(...)`` shows it once)."""


def terminal(
    line: str, *, engine: Engine | None = None, show: bool = True, timeout: float = CLI_TIMEOUT_S
) -> Shown:
    """Run ``line`` as a terminal would (see the module docstring); print it unless ``show=False``.

    Returns the last command's :class:`Shown` (for ``A && B``, B's; A's when A failed).
    """
    commands = split_commands(line)
    if engine is None:
        from portbinding.widgets.session import lesson_engine  # the kernel's own session

        engine = lesson_engine()
    shown: Shown | None = None
    for words in commands:
        # Shown as typed; a part of an && chain as the shell would read it back.
        shown = _one(engine, words, line.strip() if len(commands) == 1 else shlex.join(words), timeout)
        if show:
            print(shown.text())
        if not shown.ok:
            break
    assert shown is not None  # commands is not empty
    return shown


def split_commands(line: str) -> list[list[str]]:
    """``line`` as the word lists of its commands (``A && B``), split as a POSIX shell splits them.

    Operators count only outside quotes (``python3 -c "a; b"`` is one command); any operator but
    ``&&`` -- a pipe, a redirection, ``;`` -- is refused, because no shell runs the line.
    """
    lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;<>()")
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError as exc:  # an unclosed quote
        raise PortBindingError(f"Cannot read {line!r}: {exc}.", hint="close every quote you open") from None
    commands: list[list[str]] = [[]]
    for token in tokens:
        if token == "&&":
            commands.append([])
        elif token and set(token) <= set("|&;<>()"):
            raise PortBindingError(
                f"terminal() runs a command (or a few joined with &&), not a shell: {token!r} in {line!r}.",
                hint="pipes and redirections work in a real terminal (JupyterLab: File > New > Terminal)",
            )
        else:
            commands[-1].append(token)
    if not all(commands):
        raise PortBindingError(f"An empty command in {line!r}.", hint="write one command on each side of &&")
    return commands


def _one(engine: Engine, words: list[str], line: str, timeout: float) -> Shown:
    program = words[0]
    if program == "curl":
        return _curl(line, words, timeout)
    if program == "docker-compose":
        return Shown(line, *compose_command(engine, words))  # type: ignore[arg-type]
    if program in ("docker", "podman"):
        verb = words[1] if len(words) > 1 else ""
        if verb == "container" and len(words) > 2:  # `docker container ls` and friends
            verb = words[2]
        if verb in _MUTATING:
            return _through_engine(engine, line, words, verb)
        if verb == "network" and (said := network_command(engine, words)) is not None:
            return Shown(line, *said)  # type: ignore[arg-type]
        if verb == "compose":
            return Shown(line, *compose_command(engine, words))  # type: ignore[arg-type]
        if verb not in _LOOKING:
            return Shown(
                line,
                f"(`{program} {verb}` is for a real terminal: a lesson cell runs only the lines a lesson "
                f"needs -- {', '.join(_MUTATING + _LOOKING)}, network and compose)",
                2,
                "engine",
            )
        if _cli_reaches(engine, program):
            return _cli(line, [_cli_for(engine, program), *words[1:]], timeout, docker_host=engine.info.url)
        return _api(engine, line, words, verb)
    if shutil.which(program) is None:
        return Shown(
            line, f"(`{program}` is not installed here: type it on a machine that has it)", 127, "cli"
        )
    return _cli(line, words, timeout)


# ------------------------------------------------------------------------------ real programs


def _cli_for(engine: Engine, program: str) -> str:
    """The binary that runs a docker/podman line: the one named, else the other (same arguments)."""
    if shutil.which(program):
        return program
    return "docker" if program == "podman" else "podman"


def _cli_reaches(engine: Engine, program: str) -> bool:
    """Whether a docker/podman CLI here can talk to ``engine`` (the process engine is not for it)."""
    if engine.info.kind == "process":
        return False
    # The docker CLI speaks to any Docker-API endpoint given in DOCKER_HOST, Podman's included;
    # a podman CLI would need its own connection set-up, so only the docker CLI is used.
    return shutil.which("docker") is not None and (program == "docker" or shutil.which("podman") is None)


def _cli(line: str, argv: list[str], timeout: float, *, docker_host: str | None = None) -> Shown:
    typed = run_as_typed(argv, timeout, docker_host=docker_host)
    shown = "\n".join(
        part for part in (_trim(typed.output), typed.note) if part
    )  # the note survives the trim
    return Shown(line, shown, typed.code, "cli")


def _trim(text: str) -> str:
    lines = text.rstrip().splitlines()
    if len(lines) <= MAX_LINES:
        return "\n".join(lines)
    return "\n".join([*lines[:MAX_LINES], f"... ({len(lines) - MAX_LINES} more lines)"])


def _curl(line: str, words: list[str], timeout: float) -> Shown:
    if shutil.which("curl"):
        # A proxy from the environment would answer for 127.0.0.1 itself: the lesson means the port.
        shown = _cli(line, words, timeout)
        return Shown(shown.line, without_progress_meter(shown.output), shown.exit_code, shown.via)
    from portbinding.challenge.rungs import curl_says  # curl's own wording, shared with the challenges

    urls = [w for w in words[1:] if "://" in w]
    if not urls:
        return Shown(line, "curl: no URL given", 2, "engine")
    url = urls[-1]
    if url.startswith("telnet://"):
        host, _, port = url.removeprefix("telnet://").rpartition(":")
        result = probe_tcp(host.strip("[]"), int(port), timeout=3.0)
        said = f"* Connected to {host} port {port}" if result.ok else curl_says(result)
        code = 0 if result.ok else _curl_code(result)
        return Shown(
            line, f"(curl is not installed here: a TCP connect stood in for it)\n{said}", code, "engine"
        )
    result = probe_http(url, timeout=3.0, expect_status=range(100, 600))
    code = 0 if result.http_status is not None else _curl_code(result)
    return Shown(
        line,
        f"(curl is not installed here: the course's probe stood in for it)\n{curl_says(result)}",
        code,
        "engine",
    )


_DATA_MARK = re.compile(r"^[{}] \[\d+ bytes data\]$")  # -v marks body bytes so when not on a terminal
_METER_HEAD = re.compile(r"^\s*(% Total|Dload)\b")
_METER_ROW = re.compile(r"^\s*\d+(\s+[\d.]+[kMG]?){7}(\s+[-\d:]+){3}\s+[\d.]+[kMG]?")


def without_progress_meter(text: str) -> str:
    """curl's output without its progress meter, which it draws only when its output is not a
    terminal -- so in a learner's terminal it never appears."""
    kept = []
    for line in text.splitlines():
        if _METER_HEAD.match(line) or _DATA_MARK.match(line):
            continue
        rest = _METER_ROW.sub("", line)
        if rest.strip() or not line.strip():
            kept.append(rest)
    return "\n".join(kept).strip("\n")


def _curl_code(result: ProbeResult) -> int:
    """curl's exit status for what the probe saw."""
    return {"refused": 7, "reset": 56, "empty_reply": 52, "timeout": 28, "unresolved": 6}.get(
        result.outcome, 1
    )


# ------------------------------------------------------------------------------ through the engine


def _through_engine(engine: Engine, line: str, words: list[str], verb: str) -> Shown:
    note = "(the course ran this through its engine, so it is labelled and end_lesson() removes it)"
    if verb == "run":
        try:
            spec = parse_run(words, allowed_images=_allowed_images(words), networks=True)
            container = engine.run(spec)
        except PortBindingError as error:
            return Shown(
                line,
                f"docker: {error.message}" + (f"\nhint: {error.hint}" if error.hint else ""),
                125,
                "engine",
            )
        return Shown(line, f"{container.id}\n{note}", 0, "engine", container)
    names = [w for w in words[2:] if not w.startswith("-") and w != verb]
    if not names:
        return Shown(line, f'"{words[0]} {verb}" requires at least 1 argument.', 1, "engine")
    done: list[str] = []
    for name in names:
        try:
            container = _lesson_container(engine, name)
            if verb == "rm":
                engine.remove(container)
            elif verb == "stop":
                engine.stop(container, timeout=2)
            else:
                if verb == "restart":
                    engine.stop(container, timeout=2)
                container.start()
        except PortBindingError as error:
            return Shown(
                line, "\n".join([*done, f"Error response from daemon: {error.message}"]), 1, "engine"
            )
        except (
            Exception
        ) as error:  # the engine's own refusal (port taken on start, ...): shown as the CLI would
            return Shown(line, "\n".join([*done, f"Error response from daemon: {error}"]), 1, "engine")
        done.append(name)
    return Shown(line, "\n".join(done), 0, "engine")


def _allowed_images(words: list[str]) -> tuple[str, ...] | None:
    """The course images, plus a lesson-built ``portbinding/...-lesson`` image the line names."""
    from portbinding.command import COURSE_IMAGES

    built = [w for w in words if w.startswith("portbinding/") and ":lesson" in w]
    return (*COURSE_IMAGES, *(w.split(":")[0] for w in built)) if built else None


def _lesson_container(engine: Engine, name: str) -> Container:
    container = engine.get(name)
    labels = container.labels or {}
    if labels.get("portbinding.session") != engine.session:
        raise PortBindingError(
            f"{name} was not started by this lesson, so the lesson leaves it alone.",
            hint=f"in a terminal: docker rm -f {name}",
        )
    return container


# ------------------------------------------------------------------------------ read-only, via the API

_TEMPLATE = re.compile(r"\{\{\s*(json\s+)?((?:\.[A-Za-z0-9_]+)+)\s*\}\}")


def _api(engine: Engine, line: str, words: list[str], verb: str) -> Shown:
    program = cli_program(engine.info.kind)
    if engine.info.kind == "process":
        header = "(no docker CLI drives the process engine: the course read the same through its API)"
    else:
        header = f"(no {program} CLI here: the course read the same through the engine's API)"
    args = words[2:] if words[1] != "container" else words[3:]
    try:
        output = _api_output(engine, verb, args)
    except ContainerNotFound as error:
        return Shown(line, f"{header}\nError: {error.message}", 1, "engine")
    except PortBindingError as error:
        return Shown(line, f"{header}\n{error.message}", 1, "engine")
    return Shown(line, f"{header}\n{output}".rstrip(), 0, "engine")


def _api_output(engine: Engine, verb: str, args: list[str]) -> str:
    from portbinding.widgets._live import ps_rows

    names = _operands(args)
    if verb in ("ps", "ls"):
        wanted = [a.partition("=")[2] for a in args if a.startswith("name=")]
        wanted += [
            args[i + 1].partition("=")[2]
            for i, a in enumerate(args[:-1])
            if a == "--filter" and args[i + 1].startswith("name=")
        ]
        found = [
            c
            for c in engine.course_containers(session=engine.session)
            if not wanted or any(w in str(c.name) for w in wanted)
        ]
        for container in found:
            engine.state(container)  # fresh attributes
        header = f"{'CONTAINER ID':14}{'IMAGE':36}{'STATUS':28}{'PORTS':40}NAMES"
        rows = [f"{r[0]:14}{r[1]:36}{r[2]:28}{r[3]:40}{r[4]}" for r in ps_rows(found)]
        return "\n".join([header, *rows])
    if not names:
        raise PortBindingError(f"{verb} needs a container name.")
    container = engine.get(names[0])
    if verb == "port":
        wanted_port = names[1].split("/")[0] if len(names) > 1 else None
        lines = [
            str(p) if wanted_port is None else f"{bracket_host(p.host_ip or '0.0.0.0')}:{p.host_port}"
            for p in engine.ports(container)
            if wanted_port is None or str(p.container_port) == wanted_port
        ]
        return "\n".join(lines)
    if verb == "logs":
        tail = 200
        for i, a in enumerate(args[:-1]):
            if a in ("--tail", "-n") and args[i + 1].isdigit():
                tail = int(args[i + 1])
        return engine.logs(container, tail=tail)
    if verb == "exec":
        # `docker exec [-i] [-t] NAME COMMAND ARG...`: everything after the name is the command.
        position = args.index(names[0])
        argv = args[position + 1 :]
        if not argv:
            raise PortBindingError("exec needs a command after the container name.")
        try:
            result = engine.exec(container, argv, timeout=10)
        except ContainerFailed as error:
            raise PortBindingError(error.message) from error
        return result.output
    if verb == "inspect":
        engine.state(container)
        template = next((args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-f", "--format")), None)
        attrs = container.attrs
        if template is None:
            return json.dumps([attrs], indent=4)[:4000]
        return _TEMPLATE.sub(lambda m: _lookup(attrs, m.group(2), bool(m.group(1))), template)
    raise PortBindingError(
        f"The course cannot stand in for `{verb}` here.",
        hint="type it in a terminal on a machine with the docker CLI",
    )


# Options of ps/port/logs/exec/inspect that take a value (the value is not a container name).
_VALUED = {
    "--tail",
    "-n",
    "--since",
    "--until",
    "--filter",
    "-f",
    "--format",
    "-u",
    "--user",
    "-e",
    "--env",
    "-w",
}


def _operands(args: list[str]) -> list[str]:
    """The words of ``args`` that are neither options nor option values, in order.

    Everything after the first operand of ``exec`` is its command, options included; the
    caller takes those from ``args`` itself.
    """
    found: list[str] = []
    skip = False
    for word in args:
        if skip:
            skip = False
        elif word.startswith("-") and not found:
            skip = word in _VALUED
        else:
            found.append(word)
    return found


def _lookup(attrs: dict[str, Any], dotted: str, as_json: bool) -> str:
    value: Any = attrs
    for key in dotted.strip(".").split("."):
        value = value.get(key) if isinstance(value, dict) else None
    if as_json:
        return json.dumps(value)
    return "<no value>" if value is None else str(value)
