"""``docker port NAME [PORT]``, as a learner wrote it, evaluated against the real container.

ex02 asks for a random host port and the command that finds it: the command is parsed (never
run), must name the learner's own container and the container port, and the host port it
finds must really lead to the server.
"""

from __future__ import annotations

import shlex

from docker.models.containers import Container

from portbinding.command import RunSpec
from portbinding.engine import Engine
from portbinding.grading.answers import RunQuestion
from portbinding.grading.feedback import what
from portbinding.grading.protocol import CheckResult
from portbinding.probe import is_jupyter, probe_http, wait_for


def answer_port_query(
    engine: Engine, container: Container, spec: RunSpec, question: RunQuestion
) -> int | CheckResult:
    """Evaluate the learner's ``docker port NAME [PORT]`` against the real container."""
    query = question.port_query or ""
    try:
        words = shlex.split(query)
    except ValueError:
        return CheckResult(False, "invalid", f"The command {query!r} has an unclosed quote.")
    if words[:2] in (["docker", "port"], ["podman", "port"]):
        args = words[2:]
    elif words[:3] == ["docker", "container", "port"]:
        args = words[3:]
    else:
        return CheckResult(
            False,
            "wrong_answer",
            f"Expected a `docker port NAME CONTAINER_PORT` command, got {query!r}.",
            {"line": spec.to_cli()},
        )
    if not args or len(args) > 2:
        return CheckResult(
            False,
            "wrong_answer",
            "Expected `docker port NAME CONTAINER_PORT`: the container's "
            f"name, then the port inside it; got {query!r}.",
        )
    if spec.name is None:
        return CheckResult(
            False,
            "wrong_answer",
            "Your run line gives the container no --name, so your "
            "docker port command cannot name it. Next step: add --name lab to the run line "
            "and use `docker port lab 8888`.",
        )
    if args[0] != spec.name:
        return CheckResult(
            False,
            "wrong_answer",
            f"Your docker port command asks about '{args[0]}', but your "
            f"run line names the container '{spec.name}'. Next step: use the same name.",
        )
    wanted = args[1] if len(args) == 2 else None
    ports = engine.ports(container)
    if wanted is not None:
        number, _, protocol = wanted.partition("/")
        ports = [p for p in ports if str(p.container_port) == number and p.protocol == (protocol or "tcp")]
    ipv4 = [p for p in ports if ":" not in p.host_ip]
    if not ipv4:
        return CheckResult(
            False,
            "wrong_answer",
            f"`{query}` prints nothing useful here: no host port is "
            f"published for {wanted or 'any port'}. Next step: ask for the container port the "
            f"server listens on ({question.container_port}).",
        )
    host_port = ipv4[0].host_port
    host = engine.publish_host
    result = wait_for(
        lambda: probe_http(f"http://{host}:{host_port}{question.path}", timeout=2.0), timeout=5.0
    )
    if not (result.ok and (question.expect != "jupyter" or is_jupyter(result))):
        return CheckResult(
            False,
            "wrong_answer",
            f"`{query}` points at host port {host_port}, but "
            f"{what(question)} does not answer there ({result.detail}). Next step: ask for "
            f"container port {question.container_port}.",
        )
    return host_port
