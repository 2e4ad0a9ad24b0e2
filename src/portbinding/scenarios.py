"""The scenario catalogue: one record per situation the course teaches.

A scenario is an exercise image + how it is run + what a learner observes + the cause + the
fix. Lessons, widgets, exercises, tests and the grader all draw on this one list, so a change
here (a port, a flag, a fix) reaches all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from portbinding.command import RunSpec, parse_run
from portbinding.diagnose import Cause, Expect
from portbinding.errors import UnknownName


@dataclass(frozen=True)
class Scenario:
    """One teachable situation, broken and fixed."""

    id: str
    title: str
    run: RunSpec  # how the learner runs it (the broken line, or the healthy one for "ok")
    container_port: int
    expect: Expect
    path: str  # what to GET when probing from the host
    observed: str  # what the learner sees
    cause: Cause
    explanation: str
    fix: RunSpec  # the corrected run line
    config_change: str | None = None  # where the real fix is in the image's configuration
    lesson: str = ""

    def with_host_port(
        self, host_port: int, *, spec: RunSpec | None = None, host_ip: str | None = "127.0.0.1"
    ) -> RunSpec:
        """``spec`` (the broken run by default) with every fixed host port replaced by ``host_port``.

        Tests and the grader use this so a scenario never depends on 8888 being free. By default
        the port is published on 127.0.0.1 only, so an exercise server is never exposed to the
        network; ``host_ip=None`` keeps the line's own address.
        """
        base = spec or self.run
        publish = tuple(
            m.with_host_port(host_port, host_ip=host_ip) if m.host_port else m for m in base.publish
        )
        return base.replace(publish=publish, name=None)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        id="ok",
        title="The fixed notebook",
        run=parse_run("docker run -d -p 8888:8888 portbinding/notebook:1.0"),
        container_port=8888,
        expect="jupyter",
        path="/api",
        observed='http://localhost:8888/api answers {"version": ...}.',
        cause="ok",
        explanation="Jupyter listens on every interface inside the container and -p 8888:8888 "
        "forwards the host port to it.",
        fix=parse_run("docker run -d -p 8888:8888 portbinding/notebook:1.0"),
        lesson="02-the-unreachable-notebook",
    ),
    Scenario(
        id="loopback_only",
        title="The unreachable notebook",
        run=parse_run("docker run -d -p 8888:8888 portbinding/notebook-loopback:1.0"),
        container_port=8888,
        expect="jupyter",
        path="/api",
        observed="curl localhost:8888 says 'Connection reset by peer' (exit 56) or 'Empty reply' (52), "
        "while the log cheerfully says the server is running at http://127.0.0.1:8888/ -- the "
        "container's loopback, with the container port, not the host port.",
        cause="loopback_only",
        explanation="The image's config binds Jupyter to 127.0.0.1 -- the container's own loopback. "
        "docker-proxy accepts on the host, connects to the container's eth0 address, and finds nothing.",
        fix=parse_run("docker run -d -p 8888:8888 portbinding/notebook-loopback:1.0 --ServerApp.ip=0.0.0.0"),
        config_change='c.ServerApp.ip = ""  # in /etc/jupyter/jupyter_server_config.py, then rebuild',
        lesson="02-the-unreachable-notebook",
    ),
    Scenario(
        id="wrong_container_port",
        title="A mapping to the wrong container port",
        run=parse_run("docker run -d -p 8888:9999 portbinding/notebook:1.0"),
        container_port=9999,
        expect="jupyter",
        path="/api",
        observed="curl localhost:8888 is reset (56/52); through the host's own IP it is refused (7).",
        cause="wrong_container_port",
        explanation="-p HOST:CONTAINER: the right-hand side must be the port the app listens on inside "
        "(8888), not another number.",
        fix=parse_run("docker run -d -p 8888:8888 portbinding/notebook:1.0"),
        lesson="03-port-mapping",
    ),
    Scenario(
        id="not_published",
        title="Nothing published",
        run=parse_run("docker run -d portbinding/notebook:1.0"),
        container_port=8888,
        expect="jupyter",
        path="/api",
        observed="curl localhost:8888 is refused (exit 7); `docker ps` shows 8888/tcp with no arrow.",
        cause="not_published",
        explanation="EXPOSE only documents a port. Without -p (or -P) the engine opens nothing on the host.",
        fix=parse_run("docker run -d -p 127.0.0.1:8888:8888 portbinding/notebook:1.0"),
        lesson="01-port-binding",
    ),
    Scenario(
        id="crashed",
        title="Crash before listen",
        run=parse_run("docker run -d -p 8000:8000 portbinding/crash-before-listen:1.0"),
        container_port=8000,
        expect="http",
        path="/health",
        observed="curl localhost:8000 is refused (exit 7); `docker ps` no longer lists the container.",
        cause="crashed",
        explanation="The app exits before it opens its socket (MODEL_PATH is not set), and the port "
        "mapping goes with the container. The reason is in `docker logs`.",
        fix=parse_run(
            "docker run -d -p 8000:8000 -e MODEL_PATH=/app/model.json portbinding/crash-before-listen:1.0"
        ),
        lesson="04-failure-mode-lab",
    ),
    Scenario(
        id="still_starting",
        title="Still starting",
        run=parse_run("docker run -d -p 8000:8000 -e STARTUP_DELAY=8 portbinding/slow-start:1.0"),
        container_port=8000,
        expect="http",
        path="/health",
        observed="For the first seconds curl localhost:8000 is reset (56/52), then it answers.",
        cause="still_starting",
        explanation="Running is not ready: the app loads its model before it listens. Poll for "
        "readiness (or use a HEALTHCHECK) instead of sleeping a guessed time.",
        # The run line was right all along: the fix is to wait for readiness, not to change it.
        fix=parse_run("docker run -d -p 8000:8000 -e STARTUP_DELAY=8 portbinding/slow-start:1.0"),
        lesson="04-failure-mode-lab",
    ),
    Scenario(
        id="wrong_service",
        title="The wrong service answers",
        run=parse_run("docker run -d -p 8888:8888 -e HOLD_PORT=8888 portbinding/notebook:1.0 --port=9000"),
        container_port=8888,
        expect="jupyter",
        path="/api",
        observed="curl localhost:8888 answers 200 -- with 'placeholder service: not Jupyter'.",
        cause="wrong_service",
        explanation="A reply is not the right reply: another service in the container holds port 8888, "
        "while Jupyter listens on 9000.",
        fix=parse_run("docker run -d -p 8888:9000 -e HOLD_PORT=8888 portbinding/notebook:1.0 --port=9000"),
        lesson="04-failure-mode-lab",
    ),
    Scenario(
        id="port_retried",
        title="Jupyter moved to another port",
        run=parse_run("docker run -d -p 8888:8888 -e HOLD_PORT=8888 portbinding/notebook:1.0"),
        container_port=8888,
        expect="jupyter",
        path="/api",
        observed="curl localhost:8888 answers, but not Jupyter; the log says 'The port 8888 is already "
        "in use, trying another port' and then http://localhost:8889/.",
        cause="port_retried",
        explanation="Jupyter's port_retries moves it to the next free port when its port is taken -- "
        "inside the container, where -p still points at 8888.",
        fix=parse_run("docker run -d -p 8888:8889 -e HOLD_PORT=8888 portbinding/notebook:1.0"),
        config_change="c.ServerApp.port_retries = 0  # fail loudly instead of moving",
        lesson="04-failure-mode-lab",
    ),
)

SCENARIO_IDS: tuple[str, ...] = tuple(s.id for s in SCENARIOS)


def scenario(scenario_id: str) -> Scenario:
    """The scenario called ``scenario_id``; a clear error names the known ones."""
    for item in SCENARIOS:
        if item.id == scenario_id:
            return item
    raise UnknownName(
        f"There is no scenario called {scenario_id!r}.", hint=f"choose one of: {', '.join(SCENARIO_IDS)}"
    )
