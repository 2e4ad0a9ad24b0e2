"""The `portbinding` command line: doctor, images, run, probe, diagnose, ps, cleanup, lab.

Every command takes ``--json`` (stable keys) and exits with a code a script can rely on:

    0  success (reachable, built, found)
    1  the check ran and found a problem (unreachable, a diagnosed cause other than ok)
    2  bad input (usage, a port spec or run line the course refuses, an unknown name)
    3  no container engine answers
    4  any other engine, container or build failure

About 550 lines, on purpose: one argparse table and one thin handler per subcommand (each calls
into the package and prints), kept together so the command line reads as one table; a new
subcommand's logic goes into its own module, not here.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn

import docker

from portbinding import __version__, settings
from portbinding.errors import (
    EngineUnavailable,
    PortBindingError,
    PortInUse,
    UnknownName,
)

if TYPE_CHECKING:
    from portbinding.engine import Engine

EXIT_OK, EXIT_PROBLEM, EXIT_BAD_INPUT, EXIT_NO_ENGINE, EXIT_FAILED = 0, 1, 2, 3, 4


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, run one command, turn course errors into messages and exit codes.

    Whatever a command opens (an engine connection) is closed when it ends, after errors and
    interrupts too -- SIGTERM (``kill``, a stopped service or pod) is an interrupt like Ctrl-C;
    the containers it started stay (the learner removes them with `portbinding cleanup`).
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.verbose:
        # The course's modules log every engine call and wait at DEBUG; -v shows them on stderr.
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
        for noisy in ("urllib3", "docker", "paramiko", "asyncio"):
            logging.getLogger(noisy).setLevel(logging.INFO)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        with _sigterm_interrupts(), contextlib.ExitStack() as args.resources:
            return handler(args)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`... | head`); /dev/null takes the final flush
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except PortBindingError as error:
        code = _exit_code(error)
        if getattr(args, "json", False):
            print(json.dumps({"error": type(error).__name__, "message": error.message, "hint": error.hint}))
        else:
            print(f"Error: {error}", file=sys.stderr)
        return code


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt while a command runs, so its cleanup runs as after Ctrl-C
    (the default action would end the process with its sandboxes and containers left behind)."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> NoReturn:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exit_code(error: PortBindingError) -> int:
    if error.bad_input:
        return EXIT_BAD_INPUT
    if isinstance(error, EngineUnavailable):
        return EXIT_NO_ENGINE
    if type(error) is PortBindingError:
        return EXIT_BAD_INPUT  # a plain course error is about what was asked for
    return EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="portbinding", description="Port Binding Lab toolkit.")
    parser.add_argument("--version", action="version", version=f"portbinding {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log every engine call and wait on stderr (DEBUG)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def command(
        name: str, handler: Callable[[argparse.Namespace], int], text: str, *, epilog: str | None = None
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=text,
            description=text,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter if epilog else argparse.HelpFormatter,
        )
        sub.add_argument("--json", action="store_true", help="print JSON with stable keys")
        sub.set_defaults(handler=handler)
        return sub

    doctor = command("doctor", _doctor, "Find the container engine and check the exercise images.")
    doctor.add_argument(
        "--install",
        action="store_true",
        help="on Debian/Ubuntu as root: install docker.io and start dockerd if there is no engine, and "
        "the grading sandbox's bubblewrap and libseccomp if they are missing",
    )

    images = command("images", _images, "Build or list the exercise images.")
    images.add_argument("action", choices=["build", "list"])
    images.add_argument("names", nargs="*", help="image names (default: all)")
    images.add_argument("--force", action="store_true", help="rebuild even when up to date")

    run = command(
        "run",
        _run,
        "Run a scenario, or a `docker run ...` line checked by the course policy.",
        epilog=_scenario_list(),
    )
    run.add_argument(
        "what",
        nargs="*",
        help="a scenario id, or -- followed by a docker run line (options go before the --)",
    )
    run.add_argument("--wait", type=float, default=20.0, help="seconds to wait for it to answer (default 20)")

    probe = command("probe", _probe, "Probe a URL once and classify the outcome.")
    probe.add_argument("url")
    probe.add_argument("--timeout", type=float, default=2.0)

    diagnose = command("diagnose", _diagnose, "Explain why a container's port is (un)reachable.")
    diagnose.add_argument("container", nargs="?", default=None, help="its name or id (or use --compose)")
    diagnose.add_argument(
        "--compose",
        default=None,
        metavar="SERVICE",
        help="the container of this Compose service (docker compose or docker-compose made it)",
    )
    diagnose.add_argument(
        "--project", default=None, help="the Compose project, when a service name is in more than one"
    )
    diagnose.add_argument("--port", type=int, default=None, help="the container port to check")
    diagnose.add_argument(
        "--expect",
        choices=["jupyter", "http", "tcp"],
        default=None,
        help="what should answer (default: inferred from what answers inside; tcp: not HTTP)",
    )
    diagnose.add_argument("--path", default="/", help="what to GET from the host (default /)")
    diagnose.add_argument(
        "--from",
        dest="peer",
        default=None,
        metavar="CONTAINER",
        help="diagnose reaching it from this other container (with --compose: or service) instead of from "
        "this machine",
    )
    diagnose.add_argument(
        "--via",
        choices=["auto", "exec", "procfs", "helper"],
        default="auto",
        help="how to look inside: its own tools, this machine's /proc, or a helper container (default: auto)",
    )

    command("ps", _ps, "List the course's containers and their published ports.")
    cleanup = command("cleanup", _cleanup, "Remove the course's containers.")
    cleanup.add_argument("--session", default=None, help="only this session's containers")

    lab = command(
        "lab",
        _lab,
        "JupyterLab on your own working copy of the lessons and exercises (made the first time).",
        epilog="Your answers and outputs are saved in the workspace, never in the course's files.\n"
        "Files the course adds later are copied in; files already there are never overwritten.\n"
        "--reset sets the old workspace aside (renamed WORKSPACE.old-<time>) and starts afresh.\n"
        "Anything after -- goes to `jupyter lab` (e.g. -- --allow-root).",
    )
    lab.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    lab.add_argument("--port", type=int, default=8890, help="port to serve on (default 8890)")
    lab.add_argument("--workspace", type=Path, default=None, help="the working copy (default: see below)")
    lab.add_argument("--reset", action="store_true", help="set the workspace aside and copy it afresh")
    lab.add_argument(
        "--prepare-only", action="store_true", help="make or update the workspace, print it, start nothing"
    )
    lab.add_argument("jupyter_args", nargs="*", help=argparse.SUPPRESS)
    from portbinding.grading.cli import add_grading_commands

    add_grading_commands(commands, command)
    from portbinding.challenge.cli import add_challenge_commands

    add_challenge_commands(commands, command)
    from portbinding.hub.cli import add_hub_commands

    add_hub_commands(command)
    return parser


def _scenario_list() -> str:
    """The scenarios `run` knows, one a line, for its --help."""
    from portbinding.scenarios import SCENARIOS

    width = max(len(item.id) for item in SCENARIOS)
    rows = "\n".join(f"  {item.id:{width}}  {item.title}" for item in SCENARIOS)
    return (
        f"scenarios (each publishes on 127.0.0.1, as the lessons do):\n{rows}\n\n"
        "example: portbinding run loopback_only"
    )


def _say(args: argparse.Namespace, text: str) -> None:
    """Progress for a person, on stderr (stdout stays the result; --json stays one object)."""
    if not args.json:
        print(text, file=sys.stderr, flush=True)


def _emit(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    print(json.dumps(payload, indent=2, default=str) if args.json else text)


def _engine(args: argparse.Namespace) -> Engine:
    """An Engine in the command line's session, closed when the command ends (its containers stay).

    The session is one per user unless PORTBINDING_SESSION says otherwise: containers started
    with `portbinding run` outlive the command, so it must be stable across calls, and one
    learner's cleanup must never remove another's.
    """
    from portbinding.engine import Engine

    engine = Engine.connect(session=settings.cli_session(), owner="cli")
    args.resources.callback(engine.close)
    return engine


def _client(args: argparse.Namespace, client: docker.DockerClient) -> docker.DockerClient:
    """``client``, closed when the command ends."""
    args.resources.callback(client.close)
    return client


# ---------------------------------------------------------------------------------- commands


def _doctor(args: argparse.Namespace) -> int:
    from portbinding.builder import list_images
    from portbinding.compose import front_ends
    from portbinding.engine import Engine
    from portbinding.grading.sandbox import ensure_tools
    from portbinding.laptops import laptop_row
    from portbinding.provision import ensure_engine

    client, info = ensure_engine(install=args.install, say=lambda m: print(m, file=sys.stderr))
    _client(args, client)
    statuses = list_images(client)
    missing = [s.reference for s in statuses if not s.present]
    outdated = [s.reference for s in statuses if s.outdated]
    from portbinding.hub.student import context, describe

    lines = [f"Engine: {info.describe()}", *describe()]
    lines += [f"  {'ok' if s.word == 'present' else s.word:8} {s.reference}" for s in statuses]
    if (missing or outdated) and context() is not None:
        lines.append(
            "The hub loaded the images your lessons use; ask your instructor if one you need is "
            "missing or outdated."
        )
    elif missing or outdated:
        what = " and ".join(w for w, some in (("missing", missing), ("outdated", outdated)) if some)
        lines.append(f"Next step: `portbinding images build` builds the {what} images.")
        if outdated:
            lines.append("  (outdated: built from an older copy of the course than this one)")
    tools = ensure_tools(install=args.install)  # only the grading machine needs them; never an error here
    lines.append(
        f"Grading sandbox: {'missing ' + ', '.join(tools) if tools else 'bubblewrap and libseccomp ok'}"
    )
    if tools:
        lines.append("  (only to autograde: `portbinding doctor --install` as root on Debian installs them)")
    from portbinding.grading.rootconfig import course_config_warning

    config_warning = course_config_warning()  # the course in this folder, if it is one
    if config_warning:
        lines.append(f"Warning: {config_warning}")
    composes = front_ends()
    lines.append("Compose (lesson 07):" + ("" if composes else " none found -- lesson 07 shows the files"))
    lines += [f"  {item.describe()}" for item in composes]
    placed = laptop_row(Engine(client, info, owner="doctor"))
    where = placed.row.title if placed.row else "none of its rows"
    lines.append(f"Laptop engines (lesson 07's table): {where} ({placed.why})")
    _emit(
        args,
        {
            "engine": info.to_dict(),
            "images": [vars(s) for s in statuses],
            "missing": missing,
            "outdated": outdated,
            "grading_tools_missing": tools,
            "course_config_warning": config_warning,
            "hub": context(),
            "compose": [item.to_dict() for item in composes],
            "laptop_row": placed.row.key if placed.row else None,
        },
        "\n".join(lines),
    )
    return EXIT_OK


def _images(args: argparse.Namespace) -> int:
    from portbinding.builder import BuildEvent, build_images, list_images
    from portbinding.discovery import find_engine
    from portbinding.images import select

    client = _client(args, find_engine()[0])
    if args.action == "list":
        statuses = list_images(client)
        text = "\n".join(f"{s.reference:45} {s.word:8} {s.size_bytes / 1e6:7.1f} MB" for s in statuses)
        _emit(args, {"images": [vars(s) for s in statuses]}, text)
        return EXIT_OK
    select(args.names)  # unknown names fail here, before any work
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def progress(event: BuildEvent) -> None:
        if args.json:
            return
        bar = bars.get(event.image)
        if bar is None:
            bar = bars[event.image] = tqdm(
                total=event.steps,
                desc=event.image,
                unit="step",
                leave=True,
                file=sys.stderr,
                dynamic_ncols=True,
            )
        bar.total = event.steps
        bar.n = event.step
        bar.set_postfix_str(event.message[:40])
        if event.done:
            bar.close()

    built = build_images(client, args.names or None, force=args.force, progress=progress)
    payload = {
        "images": [{"reference": b.image.reference, "id": b.image_id, "cached": b.cached} for b in built]
    }
    text = "\n".join(f"{'up to date' if b.cached else 'built     '} {b.image.reference}" for b in built)
    _emit(args, payload, text)
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from portbinding.command import parse_run
    from portbinding.diagnose import diagnose
    from portbinding.engine import preferred_port
    from portbinding.engine_errors import moved_to_free_port
    from portbinding.probe import wait_until_ready
    from portbinding.scenarios import scenario

    words = [w for w in args.what if w.strip() and w != "--"]
    if not words:
        raise PortBindingError(
            "Say what to run: a scenario id, or -- followed by a docker run line.",
            hint="e.g. `portbinding run loopback_only` or "
            "`portbinding run -- docker run -d -p 8888:8888 portbinding/notebook:1.0` "
            "(`portbinding run --help` lists the scenarios)",
        )
    engine: Engine | None = None
    item = None
    if len(words) == 1 and not words[0].startswith(("docker", "podman")):
        item = scenario(words[0])
        engine = _engine(args)
        fixed = next((m.host_port for m in item.run.publish if m.host_port), None)
        # The scenario's classic port (8888) when it is free, else any free one: never a clash.
        # On 127.0.0.1, as the lessons teach -- unless the engine's ports open on another machine,
        # where that machine's loopback would be out of reach from here.
        local = engine.publish_host in ("127.0.0.1", "localhost")
        host_ip = "127.0.0.1" if local else None
        spec = item.with_host_port(preferred_port(fixed), host_ip=host_ip) if fixed else item.run
        chosen_by_course = fixed is not None
        port: int | None = item.container_port
        path = item.path
    else:
        spec = parse_run(words)  # refused lines fail here, before any engine is asked
        chosen_by_course = False  # the learner's own port: explain and suggest, never change it unasked
        port = spec.publish[0].container_port if spec.publish else None
        path = "/"
    engine = engine or _engine(args)
    _say(args, f"Starting: {spec.replace(detach=True).to_cli()}")
    try:
        container = engine.run(spec.replace(detach=True))
    except PortInUse as error:
        if error.suggestion is None:
            raise
        moved = moved_to_free_port(spec, error)
        if not chosen_by_course:
            raise PortInUse(
                error.message,
                port=error.port,
                suggestion=error.suggestion,
                hint=f"publish on a free host port instead -- the same run on port {error.suggestion}:\n"
                f"  portbinding run -- {moved.to_cli()}\n"
                f"or stop whatever holds port {error.port} (`portbinding ps` lists the course's containers)",
            ) from error
        # The course chose that port because it looked free on 127.0.0.1; another address holds it.
        _say(args, f"Host port {error.port} is taken after all: running on {error.suggestion} instead.")
        spec = moved
        container = engine.run(spec.replace(detach=True))
    url = engine.url(container, port, path) if port else None
    result = None
    if port:
        where = url or f"container port {port}"
        _say(args, f"Started {container.name}. Waiting up to {args.wait:.0f} s for {where} to answer…")
        result = wait_until_ready(engine, container, port, path=path, timeout=args.wait)
    # An answer is not the right answer (a scenario may serve the wrong thing): the diagnosis,
    # which knows what the scenario's service says, has the last word.
    verdict = diagnose(engine, container.name, container_port=port, expect=item.expect) if item else None
    payload = {
        "container": container.name,
        "cli": spec.to_cli(),
        "ports": [str(p) for p in engine.ports(container)],
        "url": url,
        "probe": result.to_dict() if result else None,
        "cause": verdict.cause if verdict else None,
    }
    text = f"Started {container.name}: {spec.to_cli()}\n  ports: {', '.join(payload['ports']) or 'none'}"
    if result:
        text += f"\n  probe: {result.outcome} -- {result.detail}"
    if verdict:
        text += f"\n  diagnosis: {verdict.cause}"
    reachable = verdict.cause == "ok" if verdict else result is None or result.ok
    if url:
        text += f"\n  {'open' if reachable and result and result.ok else 'URL'}: {url}"
    text += (
        f"\n  (`portbinding diagnose {container.name}` explains; `docker rm -f {container.name}` removes it)"
    )
    _emit(args, payload, text)
    return EXIT_OK if reachable else EXIT_PROBLEM


def _probe(args: argparse.Namespace) -> int:
    from portbinding.probe import probe_http

    try:
        result = probe_http(args.url, timeout=args.timeout)
    except ValueError as exc:
        raise PortBindingError(
            f"{args.url!r} is not a URL the probe understands: {exc}",
            hint="use the form http://HOST:PORT/PATH, e.g. http://127.0.0.1:8888/api",
        ) from exc
    _emit(args, result.to_dict(), f"{result.outcome}: {result.detail} ({result.elapsed_ms:.0f} ms)")
    return EXIT_OK if result.ok else EXIT_PROBLEM


def _diagnose(args: argparse.Namespace) -> int:
    from portbinding.diagnose import diagnose
    from portbinding.ports import validate_port

    if args.port is not None:
        validate_port(args.port, what="container port")
    if (args.container is None) == (args.compose is None):
        raise UnknownName(
            "Name one container to diagnose: a container name, or --compose SERVICE (not both).",
            hint="e.g. `portbinding diagnose api` or `portbinding diagnose --compose api`",
        )
    engine = _engine(args)
    target, peer = args.container, args.peer
    if args.compose is not None:
        from portbinding.compose import find_service, service_containers

        found = find_service(engine, args.compose, project=args.project)
        target = found
        project = found.labels.get("com.docker.compose.project")
        if peer is not None and service_containers(engine, service=peer, project=project):
            peer = find_service(engine, peer, project=project)
    result = diagnose(
        engine,
        target,
        container_port=args.port,
        expect=args.expect,
        path=args.path,
        peer=peer,
        via=args.via,
    )
    _emit(args, result.to_dict(), result.explain())
    return EXIT_OK if result.cause == "ok" else EXIT_PROBLEM


def _ps(args: argparse.Namespace) -> int:
    from portbinding.dockerjson import container_inspect
    from portbinding.engine import SESSION_LABEL

    engine = _engine(args)
    rows = []
    for container in engine.course_containers():
        ports = [str(p) for p in engine.ports(container)] if container.status == "running" else []
        rows.append(
            {
                "name": container.name,
                "image": (container_inspect(container.attrs).get("Config") or {}).get("Image", ""),
                "status": container.status,
                "session": container.labels.get(SESSION_LABEL),
                "ports": ports,
            }
        )
    text = "\n".join(f"{r['name']:28} {r['status']:9} {r['image']:40} {', '.join(r['ports'])}" for r in rows)
    _emit(args, {"containers": rows}, text or "No course containers.")
    return EXIT_OK


def _lab(args: argparse.Namespace) -> int:
    from portbinding import lab
    from portbinding.ports import validate_port

    validate_port(args.port, what="JupyterLab's port")
    workspace = lab.prepare(args.workspace or lab.default_workspace(), reset=args.reset)
    if workspace.set_aside is not None:
        _say(args, f"Your old workspace is kept at {workspace.set_aside}.")
    fresh = f"{len(workspace.copied)} file(s) copied in" if workspace.copied else "nothing new to copy"
    _say(args, f"Workspace: {workspace.root} ({fresh}; `portbinding lab --reset` starts it afresh).")
    command = lab.jupyter_command(workspace, host=args.host, port=args.port, extra=args.jupyter_args)
    if args.prepare_only:
        payload = {
            "workspace": str(workspace.root),
            "copied": [str(p) for p in workspace.copied],
            "set_aside": str(workspace.set_aside) if workspace.set_aside else None,
            "command": command,
        }
        _emit(args, payload, str(workspace.root))
        return EXIT_OK
    _say(args, f"Open http://{args.host}:{args.port}/lab (the token is printed below).")
    lab.exec_jupyter(workspace, command)
    return EXIT_OK  # not reached: JupyterLab replaced this process


def _cleanup(args: argparse.Namespace) -> int:
    engine = _engine(args)
    removed = engine.cleanup(session=args.session)
    _emit(
        args,
        {"removed": removed},
        f"Removed {len(removed)} container(s)." + ("\n  " + "\n  ".join(removed) if removed else ""),
    )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
