"""Looking inside a container's network namespace: what listens there, and what answers.

Three ways in, tried in this order (``via="auto"``), and the evidence says which one was used:

``exec``
    The container's own tools: ``cat /proc/net/tcp /proc/net/tcp6`` and a small ``python3``
    script that connects to every listener. Works on every engine (Docker, Podman, remote, the
    process engine, which answers these execs its own way), but only in images that have them.
``procfs``
    A local engine, as root: the kernel shows a process's network namespace at
    ``/proc/PID/net/tcp`` (PID from ``State.Pid``), and ``nsenter --net`` runs the same probe
    script with this machine's Python inside that namespace. Nothing in the container's file
    system is touched or needed. The PID is trusted only if its cgroup names the container (a
    remote engine's PID, or one reused since, is somebody else's process here) or its network
    namespace is the one the engine keeps for the container (``SandboxKey``), and never when
    that namespace is visible and a different one.
``helper``
    A short-lived course container (``portbinding/python-base``) started with
    ``--network container:ID``: the same namespace, the course's tools. Works on Docker, Podman
    and remote engines alike; labelled with the session, no capabilities, read-only, small
    memory and pids limits, removed afterwards (the session sweep removes it after a crash).

A ``scratch`` or distroless image therefore gets the same diagnosis as one full of tools.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Literal, TypeAlias, cast, get_args

import docker.errors
from docker.models.containers import Container

from portbinding.diagnose.evidence import InsideAnswer, InsideOutcome
from portbinding.diagnose.ladder import HELPER_IMAGE, LookPath, Source
from portbinding.diagnose.probe_script import INSIDE_PROBE, PROBE_TIMEOUT_S, parse_replies
from portbinding.diagnose.procfs import namespace_pid, nsenter_permitted, read_listeners, run_probe, tools_in
from portbinding.engine import OWNER_LABEL, Engine, ExecResult
from portbinding.engine_errors import ENGINE_ERRORS
from portbinding.errors import ContainerFailed, EngineError
from portbinding.ports import bracket_host
from portbinding.procnet import Listener

LOGGER = logging.getLogger(__name__)

Via: TypeAlias = Literal["auto", "exec", "procfs", "helper"]

# Docker's embedded DNS server listens here in every container on a user-defined network:
# the engine's, not the app's, and it keeps a connection open without a word (a slow probe).
ENGINE_RESOLVER = "127.0.0.11"
MAX_PROBED = 12  # listeners probed per look: a host-network container can list dozens
HELPER_OWNER = "diagnose-helper"
HELPER_MEMORY = "64m"
HELPER_PIDS = 32
HELPER_LIFETIME_S = 60  # its command: a backstop should the removal below never run

_OUTCOMES: frozenset[str] = frozenset(get_args(InsideOutcome))


@dataclass(frozen=True)
class Target:
    """One connection to make from inside: ``where`` (``host:port``) for the listener it tests."""

    where: str
    address: str
    port: int
    forwarded: bool = False


@dataclass(frozen=True)
class Inside:
    """What listens inside and what answered, how it was found, and notes for the learner."""

    listeners: tuple[Listener, ...]
    answers: tuple[InsideAnswer, ...]
    look: LookPath
    sockets_from: Source
    answers_from: Source
    notes: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()  # which of cat and python3 the container has (as far as seen)


def examine(
    engine: Engine,
    container: Container,
    *,
    port: int | None = None,
    forwarded: str | None = None,
    only_port: bool = False,
    extra: Collection[Target] = (),
    via: Via = "auto",
) -> Inside:
    """Read ``container``'s listening sockets and probe them from inside its network namespace.

    ``port`` is probed first (and alone when ``only_port``: a container on the host's network
    sees the host's services, which are none of our business); ``forwarded`` adds a probe of
    ``forwarded:port``, the address published traffic arrives on; ``extra`` adds targets of the
    caller's own (a peer's view of this container). Never raises for what it finds inside.

    ``auto`` takes the fastest way that works here: /proc (no exec round trips, nothing run in
    the container), else the container's own tools, else a helper container.
    """

    def targets(listeners: tuple[Listener, ...]) -> list[Target]:
        return _targets(listeners, port=port, forwarded=forwarded, only_port=only_port, extra=extra)

    notes: list[str] = []
    found: Inside | None = None
    if via in ("auto", "procfs"):
        found = _via_procfs(engine, container, targets, notes)
        if found is None and via == "procfs":
            found = Inside((), (), "none", "none", "none", (*notes, _NO_PROCFS))
    if found is None and via in ("auto", "exec"):
        found = _via_exec(engine, container, targets, notes)
        if found is None and via == "exec":
            found = Inside((), (), "none", "none", "none", (*notes, "the container has no cat"))
        elif found is None:
            notes.append(
                "the container has no cat or shell (a minimal image), so it was looked into from outside"
            )
    if found is None:
        found = _examine_with_helper(engine, container, targets, notes)
    LOGGER.debug(
        "looked inside %s via %s: %d listeners, answers from %s",
        container.name,
        found.look,
        len(found.listeners),
        found.answers_from,
    )
    return found


_NO_PROCFS = "this machine cannot see the container's process (a remote engine, or not root)"


def _via_procfs(
    engine: Engine,
    container: Container,
    targets: Callable[[tuple[Listener, ...]], list[Target]],
    notes: list[str],
) -> Inside | None:
    pid = namespace_pid(engine, container)
    if pid is None or not nsenter_permitted():
        return None
    found = read_listeners(pid)
    if found is None:
        return None
    chosen = targets(found)
    answers = _answers(chosen, run_probe(pid, [t.where for t in chosen], notes))
    return Inside(found, answers, "procfs", "procfs", "procfs", tuple(notes), tools_in(pid, container))


def _via_exec(
    engine: Engine,
    container: Container,
    targets: Callable[[tuple[Listener, ...]], list[Target]],
    notes: list[str],
) -> Inside | None:
    try:
        found, raw = engine.read_listeners(container)
    except ContainerFailed:
        notes.append("the container stopped while it was being examined")
        return Inside((), (), "none", "none", "none", tuple(notes))
    if _missing_tool(raw):
        return None
    listeners = tuple(found)
    if raw.exit_code not in (0, 1) and not listeners:
        notes.append(f"could not read /proc/net/tcp inside the container: {raw.output.strip()[:120]}")
    answers, source = _probe_via_exec(engine, container, targets(listeners), notes)
    tools = ("cat", "python3") if source == "exec" else ("cat",)
    return Inside(listeners, answers, "exec", "exec", source, tuple(notes), tools)


# ------------------------------------------------------------------------------ targets


def probe_targets(listener: Listener) -> list[str]:
    """Where to connect from inside to test ``listener``.

    A wildcard ``::`` listener is tried on 127.0.0.1 first: it is dual-stack unless the server
    asked for IPv6 only, and a container on Docker's default bridge has no ``[::1]`` at all.
    """
    if listener.is_wildcard:
        if listener.family == "ipv4":
            return [f"127.0.0.1:{listener.port}"]
        return [f"127.0.0.1:{listener.port}", f"[::1]:{listener.port}"]
    address = listener.address.removeprefix("::ffff:") if "." in listener.address else listener.address
    return [f"{bracket_host(address)}:{listener.port}"]


def _targets(
    listeners: tuple[Listener, ...],
    *,
    port: int | None,
    forwarded: str | None,
    only_port: bool,
    extra: Collection[Target],
) -> list[Target]:
    chosen = sorted(listeners, key=lambda item: item.port != port)  # the port in question first
    chosen = [item for item in chosen if item.address != ENGINE_RESOLVER]
    if only_port:
        chosen = [item for item in chosen if item.port == port]
    targets: list[Target] = []
    for listener in chosen[:MAX_PROBED]:
        targets.extend(Target(where, listener.address, listener.port) for where in probe_targets(listener))
    if forwarded and port is not None and any(item.port == port for item in listeners):
        where = f"{bracket_host(forwarded)}:{port}"
        if all(target.where != where for target in targets):
            targets.append(Target(where, forwarded, port, forwarded=True))
    targets.extend(extra)
    return targets


def _answers(targets: list[Target], replies: dict[str, object]) -> tuple[InsideAnswer, ...]:
    answers = []
    for target in targets:
        reply = replies.get(target.where)
        record = reply if isinstance(reply, dict) else {"outcome": "not_probed"}
        outcome = str(record.get("outcome", "error"))
        answers.append(
            InsideAnswer(
                address=target.address,
                port=target.port,
                reply=str(record.get("reply", "")),
                target=target.where,
                outcome=cast(InsideOutcome, outcome if outcome in _OUTCOMES else "error"),
                detail=str(record.get("detail", "")),
                forwarded=target.forwarded,
                resolved=str(record.get("resolved", "")),
            )
        )
    return tuple(answers)


# ------------------------------------------------------------------------------ exec


def _missing_tool(result: ExecResult) -> bool:
    """Whether an exec failed because the program is not in the image (not because it ran and failed)."""
    text = result.output.lower()
    return result.exit_code in (126, 127) and ("not found" in text or "no such file" in text)


def _probe_via_exec(
    engine: Engine, container: Container, targets: list[Target], notes: list[str]
) -> tuple[tuple[InsideAnswer, ...], Source]:
    if not targets:
        return (), "exec"
    command = ["python3", "-c", INSIDE_PROBE, *(target.where for target in targets)]
    try:
        result = engine.exec(container, command, timeout=PROBE_TIMEOUT_S)
    except ContainerFailed:
        notes.append("the container stopped while it was being probed from within")
        return _answers(targets, {}), "exec"
    replies = parse_replies(result.output)
    if replies:
        return _answers(targets, replies), "exec"
    if _missing_tool(result):
        # Tools for reading, none for probing (nginx, node, distroless with a shell): probe
        # from this machine inside its namespace, or from a helper container.
        pid = namespace_pid(engine, container)
        if pid is not None and nsenter_permitted():
            return _answers(targets, run_probe(pid, [t.where for t in targets], notes)), "procfs"
        return _probe_via_helper(engine, container, targets, notes), "helper"
    why = "the probe timed out" if result.timed_out else f"the probe failed (exit {result.exit_code})"
    notes.append(f"listeners were not probed from within: {why}")
    return _answers(targets, {}), "exec"


def probe_by_name(
    engine: Engine, container: Container, targets: list[Target], *, via: Via = "auto"
) -> tuple[tuple[InsideAnswer, ...], tuple[str, ...]]:
    """Connections to ``name:port`` targets from inside ``container``, resolved by its own resolver.

    Its own python3, else a helper container: the helper shares its namespace *and* its
    resolv.conf and hosts files (the engine hands them to ``--network container:``). Never this
    machine's Python under nsenter, which would ask this machine's resolver instead.
    """
    notes: list[str] = []
    if not targets:
        return (), ()
    if via != "helper":
        command = ["python3", "-c", INSIDE_PROBE, *(target.where for target in targets)]
        try:
            result = engine.exec(container, command, timeout=PROBE_TIMEOUT_S)
        except ContainerFailed:
            return _answers(targets, {}), ("the container stopped while names were looked up",)
        replies = parse_replies(result.output)
        if replies or not _missing_tool(result):
            return _answers(targets, replies), tuple(notes)
    return _probe_via_helper(engine, container, targets, notes), tuple(notes)


# ------------------------------------------------------------------------------ helper


@contextlib.contextmanager
def helper_container(engine: Engine, target: Container) -> Iterator[Container]:
    """A course container sharing ``target``'s network namespace, removed when the block ends.

    Raises:
        EngineError: the helper image is missing or the engine refused the helper.
    """
    labels = {**engine.labels, OWNER_LABEL: HELPER_OWNER}
    try:
        helper = engine.client.containers.create(
            HELPER_IMAGE,
            command=["sleep", str(HELPER_LIFETIME_S)],
            network_mode=f"container:{target.id}",
            labels=labels,
            user="65534:65534",
            read_only=True,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            mem_limit=HELPER_MEMORY,
            pids_limit=HELPER_PIDS,
            nano_cpus=500_000_000,
            detach=True,
        )
    except docker.errors.ImageNotFound:
        raise EngineError(
            f"The helper image {HELPER_IMAGE} is not on this engine.",
            hint="build the course images (`portbinding images build`) on this engine",
        ) from None
    except ENGINE_ERRORS as exc:
        raise EngineError(f"The engine would not start a helper container: {exc}") from exc
    try:
        helper.start()
        yield helper
    except ENGINE_ERRORS as exc:
        raise EngineError(f"The helper container failed: {exc}") from exc
    finally:
        with contextlib.suppress(*ENGINE_ERRORS):
            helper.remove(force=True)


def _probe_via_helper(
    engine: Engine, container: Container, targets: list[Target], notes: list[str]
) -> tuple[InsideAnswer, ...]:
    if not targets:
        return ()
    try:
        with helper_container(engine, container) as helper:
            notes.append(f"probed from a helper container ({HELPER_IMAGE}) in its network namespace")
            return _probe_via_exec(engine, helper, targets, notes)[0]
    except EngineError as exc:
        notes.append(f"could not probe from inside: {exc}")
        return _answers(targets, {})


def _examine_with_helper(
    engine: Engine,
    container: Container,
    targets: Callable[[tuple[Listener, ...]], list[Target]],
    notes: list[str],
) -> Inside:
    try:
        with helper_container(engine, container) as helper:
            listeners = tuple(engine.listeners(helper))
            answers, _ = _probe_via_exec(engine, helper, targets(listeners), notes)
    except (EngineError, ContainerFailed) as exc:
        notes.append(f"could not look inside with a helper container: {exc}")
        return Inside((), (), "none", "none", "none", tuple(notes))
    notes.append(f"looked inside through a helper container ({HELPER_IMAGE}) sharing its network namespace")
    return Inside(listeners, answers, "helper", "helper", "helper", tuple(notes))
