"""``terminal()``'s networks and Compose (lesson 07): the learner's line, run labelled and checked.

``docker network create shop`` makes a user-defined network labelled like the lesson's
containers (so ``end_lesson()`` removes it); ``connect``/``disconnect``/``rm`` touch only the
lesson's own networks and containers. ``docker compose …`` and ``docker-compose …`` run the
front end this machine has (:mod:`portbinding.compose`; ``docker compose`` preferred, and the
output says when the other one stood in), under a project name of the lesson's session, with a
second file that adds the course labels to every service and to the default network -- and only
after the Compose file passed the course policy, the same one that grades ex04
(:mod:`portbinding.grading.compose_policy`): course images, no host network, no volumes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import docker.errors
import yaml

from portbinding.compose import FrontEnd, front_ends
from portbinding.engine import Engine
from portbinding.engine_errors import explanation
from portbinding.errors import PortBindingError, PortSpecError
from portbinding.grading.compose_policy import ComposeRefused, read_compose
from portbinding.host import run_as_typed
from portbinding.networks import create_network

# What a command printed, its exit status, and how it ran ("cli": the real program; "engine": the
# course's engine stood in) -- terminal() shows it as it shows every command.
Said = tuple[str, int, str]
COMPOSE_TIMEOUT_S = 180.0
SESSION_LABEL = "portbinding.session"
_NOTE = "(the course made it labelled, so end_lesson() removes it)"


def is_compose(words: list[str]) -> bool:
    return words[0] == "docker-compose" or words[1:2] == ["compose"]


def require_networks(engine: Engine, *, what: str) -> None:
    """Stop here, with a plain message, where the engine has no networks (the process engine).

    Raised as a course error, so a notebook shows the message, not a traceback, and "Run All"
    stops at this cell: what follows needs Docker or Podman.
    """
    if engine.info.kind == "process":
        raise PortBindingError(
            f"{what} needs Docker or Podman: the course's process engine (Binder) has no networks, no "
            "name resolution between containers, and runs Python servers only (no nginx, no Redis).",
            hint="read the rest of this lesson here, and run it where Docker or Podman is installed",
        )


# ------------------------------------------------------------------------------ networks


_NETWORK_READS = ("", "ls", "list", "inspect", "--help")
# Compose commands that create nothing from the file: the file is not checked for them.
_COMPOSE_READS = ("ps", "logs", "down", "config", "ls", "images", "top", "port", "version", "stop", "events")


def network_command(engine: Engine, words: list[str]) -> Said | None:
    """Run a ``docker network`` line that changes something; None for a read-only one (ls, inspect)."""
    verb = words[2] if len(words) > 2 else ""
    operands = [w for w in words[3:] if not w.startswith("-")]
    if verb in _NETWORK_READS:
        return None
    if verb not in ("create", "rm", "connect", "disconnect"):
        # prune (and anything new) would reach networks that are not the lesson's: on a shared
        # engine, a classmate's. The lesson's own go with end_lesson().
        return (
            f'"docker network {verb}" is not run from a lesson: it can reach networks that are not '
            "this lesson's (on a shared engine, a classmate's). end_lesson() removes the lesson's own; "
            "docker network rm NAME removes one of them now.",
            1,
            "engine",
        )
    if engine.info.kind == "process":
        return ("The process engine has no networks: this part needs Docker or Podman.", 1, "engine")
    try:
        if verb == "create":
            if len(operands) != 1:
                return ('"docker network create" requires exactly 1 argument.', 1, "engine")
            network = create_network(engine.client, operands[0], labels=engine.labels)
            return (f"{network.id}\n{_NOTE}", 0, "engine")
        if verb == "rm":
            for name in operands:
                _lesson_network(engine, name).remove()
            return ("\n".join(operands), 0, "engine")
        if len(operands) != 2:
            return (f'"docker network {verb}" requires exactly 2 arguments.', 1, "engine")
        network, container = _lesson_network(engine, operands[0]), _lesson_container(engine, operands[1])
        if verb == "connect":
            aliases = [words[i + 1] for i, w in enumerate(words[:-1]) if w == "--alias"]
            network.connect(container, aliases=aliases or None)
        else:
            network.disconnect(container)
        return ("", 0, "engine")
    except PortBindingError as error:
        return (f"Error response from daemon: {error.message}", 1, "engine")
    except docker.errors.APIError as error:
        return (f"Error response from daemon: {explanation(error)}", 1, "engine")


def _lesson_network(engine: Engine, name: str) -> docker.models.networks.Network:
    try:
        network = engine.client.networks.get(name)
    except docker.errors.NotFound:
        raise PortBindingError(f"network {name} not found") from None
    if (network.attrs.get("Labels") or {}).get(SESSION_LABEL) != engine.session:
        raise PortBindingError(f"{name} was not made by this lesson, so the lesson leaves it alone")
    return network


def _lesson_container(engine: Engine, name: str) -> docker.models.containers.Container:
    container = engine.get(name)
    if (container.labels or {}).get(SESSION_LABEL) != engine.session:
        raise PortBindingError(f"{name} was not started by this lesson, so the lesson leaves it alone")
    return container


# ------------------------------------------------------------------------------ Compose


def project_name(engine: Engine) -> str:
    """The lesson's Compose project: one per session, so classmates on one engine never collide."""
    return f"l07{engine.session[:10]}"


def compose_command(engine: Engine, words: list[str], *, cwd: Path | None = None) -> Said:
    """Run a Compose line (either spelling) with the front end this machine has."""
    if engine.info.kind == "process":
        return (
            "The process engine has no networks and no Compose: this part needs Docker or Podman.",
            1,
            "engine",
        )
    found = front_ends()
    if not found:
        return (
            "Neither `docker compose` nor `docker-compose` is installed here (portbinding doctor looks for "
            "both). Read the file and what it would do; ex04 is graded without Compose on your machine.",
            127,
            "cli",
        )
    asked = "plugin" if words[1:2] == ["compose"] else "standalone"
    chosen = next((f for f in found if (f.kind == "plugin") == (asked == "plugin")), found[0])
    args = words[2:] if words[0] == "docker" else words[1:]
    files, rest = _split_files(args)
    if len(files) > 1:  # Compose merges them: the check reads one file, so one file it is
        said = "(the lesson takes one Compose file, -f FILE; merging files is for a real terminal)"
        return (said, 2, "cli")
    if rest[:1] and rest[0].startswith("-"):
        # Options before the command (--profile, --env-file, ...) are not needed here, and would
        # hide the command from the check below.
        return (
            f"(the lesson runs Compose's command first, with -f FILE only: {rest[0]} is for a real "
            "terminal) -- e.g. docker compose up -d, docker compose ps, docker compose down",
            2,
            "cli",
        )
    folder = cwd or Path.cwd()
    file = files[0] if files else folder / "docker-compose.yml"
    try:
        text = file.read_text()
    except OSError as error:
        return (f"no configuration file provided: {error.strerror}: {file}", 14, "cli")
    if rest and rest[0] not in _COMPOSE_READS:  # up, create, run, start, ...: anything that may make
        try:
            read_compose(text)
        except (ComposeRefused, PortSpecError) as error:  # a port the file writes wrong: the same words
            return (
                f"(the course checked the file first, with the policy that grades ex04)\n{error}",
                1,
                "engine",
            )
    with tempfile.TemporaryDirectory(prefix="portbinding-compose-") as tmp:
        override = Path(tmp) / "course-labels.yml"
        override.write_text(_labels_file(engine, text))
        argv = [*chosen.argv, "-p", project_name(engine), "-f", str(file), "-f", str(override), *rest]
        shown = _run(argv, engine, file.parent)
    if chosen.kind == "plugin" and asked != "plugin":
        return _said(shown, f"(docker-compose is not here: {chosen.describe()} ran it)")
    if chosen.kind != "plugin" and asked == "plugin":
        return _said(shown, f"(`docker compose` is not here: {chosen.describe()} ran it)")
    return shown


def _split_files(args: list[str]) -> tuple[list[Path], list[str]]:
    """The ``-f FILE`` options (before the command) and the rest; ``-p`` is the lesson's own."""
    files: list[Path] = []
    rest: list[str] = []
    index = 0
    while index < len(args):
        word = args[index]
        if word in ("-f", "--file") and index + 1 < len(args):
            files.append(Path(args[index + 1]))
            index += 2
            continue
        if word in ("-p", "--project-name") and index + 1 < len(args):
            index += 2  # the lesson names the project (one per session)
            continue
        rest.append(word)
        index += 1
    return files, rest


def _labels_file(engine: Engine, text: str) -> str:
    """A second Compose file: the course labels on every service and on the default network."""
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError:
        loaded = None
    document = loaded if isinstance(loaded, dict) else {}
    found = document.get("services")
    services: dict[str, object] = found if isinstance(found, dict) else {}
    labels = dict(engine.labels)
    extra: dict[str, object] = {
        "services": {str(name): {"labels": labels} for name in services},
        "networks": {"default": {"labels": labels}},
    }
    if "version" in document:
        extra = {"version": str(document["version"]), **extra}  # v1 merges files of one version only
    return yaml.safe_dump(extra, sort_keys=False)


def _run(argv: list[str], engine: Engine, folder: Path) -> Said:
    typed = run_as_typed(
        argv, COMPOSE_TIMEOUT_S, docker_host=engine.info.url, cwd=folder, env={"COMPOSE_PROGRESS": "plain"}
    )
    return typed.text.rstrip(), typed.code, "cli"


def _said(said: Said, note: str) -> Said:
    output, code, via = said
    return f"{note}\n{output}".rstrip(), code, via


__all__ = [
    "FrontEnd",
    "Said",
    "compose_command",
    "is_compose",
    "network_command",
    "project_name",
    "require_networks",
]
