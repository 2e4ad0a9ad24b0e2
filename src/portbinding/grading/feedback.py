"""The words of a verdict: what was expected, what was observed, and the next step.

Failure messages are built from the diagnosis (``portbinding.diagnose``) of the container the
answer started, so the learner reads the same cause and fix the course's tools show.
"""

from __future__ import annotations

from portbinding.command import RunSpec
from portbinding.diagnose import Diagnosis
from portbinding.errors import PortInUse
from portbinding.grading.answers import RunQuestion
from portbinding.grading.protocol import CheckResult
from portbinding.probe import ProbeResult

# What a failed check_image usually means for a twelve-factor app, in its own terms.
TWELVE_FACTOR_HINTS = {
    "wrong_container_port": " Your app listens on another port: read it from the environment, "
    "int(os.environ['PORT']), instead of a fixed number.",
    "loopback_only": " Your app listens on 127.0.0.1, which only its own container reaches: bind 0.0.0.0.",
    "crashed": " Your app exited: its last lines of output (below) say why.",
}


def static_problem(spec: RunSpec, question: RunQuestion) -> str | None:
    """What makes the line a wrong answer before it runs (things running cannot show)."""
    repository = spec.image.rsplit(":", 1)[0] if spec.image.rfind(":") > spec.image.rfind("/") else spec.image
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
    if question.host_port is not None and mine and all(m.host_port != question.host_port for m in mine):
        return (
            f"Expected host port {question.host_port} (the question asks for "
            f"http://localhost:{question.host_port}/), but the line publishes on "
            f"{', '.join(str(m.host_port or 'a random port') for m in mine)}. Next step: keep the host side "
            f"-p {question.host_port}:... and fix the other side."
        )
    return None


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
    evidence = diagnosis.evidence
    facts = [
        f"state {evidence.status}" + (f", exit code {evidence.exit_code}" if evidence.exit_code else ""),
        f"published {', '.join(evidence.published) or 'nothing'}",
    ]
    if evidence.status == "running":
        facts.append(f"listening inside {', '.join(evidence.listeners) or 'nothing'}")
    if evidence.status != "running" and evidence.log_tail:
        facts.append(f"last log line {evidence.log_tail[-1].strip()[:160]!r}")
    return (
        f"Expected: {expected}.\nObserved: {observed} ({'; '.join(facts)})\n"
        f"Next step: {diagnosis.fix.summary}"
    )
