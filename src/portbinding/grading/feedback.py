"""The words of a verdict: what was expected, what was observed, and the next step.

Failure messages are built from the diagnosis (``portbinding.diagnose``) of the container the
answer started, so the learner reads the same cause and fix the course's tools show.
"""

from __future__ import annotations

import ipaddress

from portbinding.command import RunSpec
from portbinding.diagnose import Diagnosis
from portbinding.errors import PortInUse
from portbinding.grading.answers import RunQuestion
from portbinding.grading.protocol import CheckResult
from portbinding.images import split_image_ref
from portbinding.probe import ProbeResult

# What a failed check_image usually means for a twelve-factor app, in its own terms.
TWELVE_FACTOR_HINTS = {
    "wrong_container_port": " Your app listens on another port: read it from the environment, "
    "int(os.environ['PORT']), instead of a fixed number.",
    "loopback_only": " Your app listens on 127.0.0.1, which only its own container reaches: bind 0.0.0.0.",
    "wrong_address": " Your app listens on one specific address, not the one traffic from the host arrives "
    "on: bind 0.0.0.0 (every address of the container).",
    "ipv6_only": " Your app listens on IPv6 only, and the engine forwards over IPv4: bind 0.0.0.0.",
    "crashed": " Your app exited: its last lines of output (below) say why.",
    "crash_loop": " Your app keeps exiting and being restarted: its last lines of output (below) say why.",
}


def static_problem(spec: RunSpec, question: RunQuestion) -> str | None:
    """What makes the line a wrong answer before it runs (things running cannot show)."""
    repository = split_image_ref(spec.image)[0]
    if question.images and repository not in question.images:
        return (
            f"Expected the image {' or '.join(question.images)} (the question is about it), but the line "
            f"runs {spec.image}. Next step: keep the image and fix how it is run."
        )
    mine = [m for m in spec.publish if m.container_port == question.container_port and m.protocol == "tcp"]
    if question.random_host_port:
        fixed = [m for m in mine if m.host_port]
        if fixed or (not mine and not spec.publish_all):
            return (
                f"Expected the engine to choose the host port, but the line "
                f"{'fixes host port ' + str(fixed[0].host_port) if fixed else 'publishes no port'}. "
                f"Next step: leave the host side empty (-p {question.container_port}) or use -P."
            )
    wanted = question.host_port
    # The host port is checked even when no mapping reaches the container port: -P or -p 8888
    # leave the host port to the engine, which is not "host port 8888". A line that does publish
    # that host port, to another container port, runs: its diagnosis names the container side.
    if wanted is not None and (
        (mine and all(m.host_port != wanted for m in mine))
        or not any(m.host_port == wanted for m in spec.publish)
    ):
        sides = [str(m.host_port or "a random port") for m in mine] or [
            "a port the engine chooses (-P)" if spec.publish_all else "no host port at all"
        ]
        return (
            f"Expected host port {wanted} (the question asks for http://localhost:{wanted}/), but the line "
            f"publishes on {', '.join(sides)}. Next step: keep the host side -p {wanted}:... and fix the "
            "other side."
        )
    if question.private:
        public = [m for m in (mine or spec.publish) if not is_loopback(m.host_ip)]
        if public or (spec.publish_all and not mine):
            where = (
                f"on {public[0].host_ip}" if public and public[0].host_ip else "on every network interface"
            )
            return (
                f"Expected {what(question)} reachable from this machine only. Observed: "
                f"{'-P' if not public else '-p ' + public[0].to_spec()} publishes it {where} of this "
                "computer, so anyone on the network could reach it. Next step: put 127.0.0.1 in front of the "
                "host port: -p 127.0.0.1:HOST:CONTAINER."
            )
    return None


def is_loopback(host_ip: str) -> bool:
    """Whether a published host address is reachable from this machine only."""
    try:
        return ipaddress.ip_address(host_ip).is_loopback
    except ValueError:
        return False  # "" (every address) or not an address at all


def busy_port_result(
    error: PortInUse, occupied: dict[int, int], spec: RunSpec, question: RunQuestion
) -> CheckResult:
    """The result for a run the engine refused because a host port was busy."""
    busy = {held: learner for learner, held in occupied.items()}
    learner_port = busy.get(error.port, error.port)
    if error.port in busy:
        message = (
            f"Expected the notebook to start on a free host port. Observed: host port {learner_port} is "
            f"already taken on this machine (as the question says), and `{spec.to_cli()}` publishes on it, "
            "so the engine refused to start the container ('port is already allocated'). Next step: "
            f"publish on another host port, e.g. -p 8890:{question.container_port}, or leave the host "
            f"port out (-p {question.container_port}) and look it up with docker port."
        )
        return CheckResult(False, "port_in_use", message, {"line": spec.to_cli()})
    return CheckResult(
        False,
        "grader_error",
        f"The grader could not find a free host port ({error}); this is a "
        "problem on the grading machine, not in your answer.",
    )


def what(question: RunQuestion) -> str:
    """What should answer, in the learner's words."""
    return "the Jupyter server" if question.expect == "jupyter" else "your app"


def passed_message(spec: RunSpec, question: RunQuestion, moved: dict[int, int]) -> str:
    """The verdict for a line that works; says which host ports the grader used instead."""
    shown = ", ".join(f"{learner} as {grader}" for learner, grader in moved.items())
    note = (
        f" (the grader published host port {shown}, so that those ports being busy on the grading machine "
        "never matters)"
    )
    return (
        f"Passed: `{spec.to_cli()}` started, and {what(question)} answered GET {question.path} through the "
        f"published port{note if moved else ''}."
    )


def failed_message(diagnosis: Diagnosis, question: RunQuestion, ready: ProbeResult) -> str:
    """Expected / Observed (with the evidence) / Next step, from the diagnosis of the container."""
    expected = (
        f"{what(question)} answering GET {question.path} through the published host port "
        f"(container port {question.container_port})"
    )
    observed = (
        diagnosis.summary
        if diagnosis.cause != "ok"
        else (f"something answered, but not {what(question)}: {ready.detail}")
    )
    return (
        f"Expected: {expected}.\nObserved: {observed} ({'; '.join(_facts(diagnosis))})\n"
        f"Next step: {diagnosis.fix.summary}"
    )


def cause_message(cause: str, diagnosis: Diagnosis, ready: ProbeResult, *, passed: bool) -> str:
    """The verdict on a learner's cause: the evidence, layer by layer, and (if wrong) how to read it.

    A wrong cause is answered with what each rung of the ladder showed, never with the right
    cause's name: the learner reads the evidence and commits again.
    """
    facts = "; ".join(_facts(diagnosis))
    if passed:
        return f"Passed: {cause!r} is what the evidence shows ({facts}). {diagnosis.summary}"
    return (
        f"Expected: the cause the evidence shows. Observed: you answered {cause!r}, but the container "
        f"shows: {facts}. Next step: climb the ladder rung by rung -- is it running (docker ps -a)? What "
        "is published (docker port NAME)? What listens inside, on which address (docker exec NAME cat "
        "/proc/net/tcp, or portbinding diagnose NAME)? -- and pick the cause that explains all of it."
    )


def _facts(diagnosis: Diagnosis) -> list[str]:
    """The evidence of a diagnosis as short facts: state, published ports, listeners, last log line."""
    evidence = diagnosis.evidence
    facts = [
        f"state {evidence.status}" + (f", exit code {evidence.exit_code}" if evidence.exit_code else ""),
        f"published {', '.join(evidence.published) or 'nothing'}",
    ]
    if evidence.status == "running":
        facts.append(f"listening inside {', '.join(evidence.listeners) or 'nothing'}")
    if evidence.status != "running" and evidence.log_tail:
        facts.append(f"last log line {evidence.log_tail[-1].strip()[:160]!r}")
    return facts
