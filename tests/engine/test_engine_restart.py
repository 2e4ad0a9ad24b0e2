"""The engine stops in the middle of a lesson, and comes back: the widgets say so and recover.

A real dockerd is stopped with SIGTERM (as `service docker stop` does) and started again on the
same data root and socket. It is a scratch dockerd (see scratch_engine.py), never the course's
engine, in a network namespace of its own (``ip netns``) with its own bridge, so published ports
work there and nothing touches the host's network. The widgets run where those ports are: in a
driver process inside that namespace (``python -m tests.engine.test_engine_restart``), which
builds them, clicks their buttons as told on stdin and reports their state as JSON lines.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.engine.test_faults import CLI
from tests.support.checkout import REPO
from tests.support.scratch_engine import ScratchEngine, load_base, start_scratch_engine
from tests.support.staging import bare_env, run_as

pytestmark = pytest.mark.engines("docker", reason="stops and restarts a real dockerd")

IMAGE = "portbinding/scoring-api:1.0"
HOST_PORT = 18000  # the namespace is empty: any port is free there
JOB_TIMEOUT = 60.0
DRIVER_LOG = "driver.log"  # the driver's stderr, beside the scratch engine's own log
REPLY_TIMEOUT = 120.0


@dataclass
class Lab:
    """The scratch engine, its namespace, and the driver process running the widgets inside it."""

    engine: ScratchEngine
    netns: Path
    exec_root: Path
    driver: subprocess.Popen[str]

    def send(self, **command: Any) -> dict[str, Any]:
        """One command to the driver; its JSON reply (the widgets' state after it)."""
        assert self.driver.stdin is not None and self.driver.stdout is not None, "the driver has no pipes"
        self.driver.stdin.write(json.dumps(command) + "\n")
        self.driver.stdin.flush()
        line = _read_line(self.driver, REPLY_TIMEOUT)
        reply: dict[str, Any] = json.loads(line)
        assert "failure" not in reply, f"the driver failed on {command}: {reply['failure']}"
        return reply

    def restart(self) -> None:
        """Start dockerd again on the same data root and socket."""
        self.engine.client.close()
        self.engine = start_scratch_engine(
            self.engine.root, size_mb=600, exec_root=self.exec_root, netns=self.netns
        )


def _read_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The driver's next line, or a failure naming what it wrote to stderr."""
    assert process.stdout is not None, "the driver has no stdout pipe"
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            pytest.fail(f"the driver did not answer within {timeout} s")
    line = process.stdout.readline()
    if not line:
        pytest.fail(f"the driver exited with {process.wait(timeout=30)}; its stderr is in {DRIVER_LOG}")
    return line


@pytest.fixture
def lab(docker_client: docker.DockerClient) -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("starting a scratch dockerd needs root")
    name = f"pbl-restart-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=30)
    netns = Path("/run/netns") / name
    root = Path(tempfile.mkdtemp(prefix="pbl-scratch-"))
    exec_root = Path(tempfile.mkdtemp(prefix="pbl-x", dir="/tmp"))
    engine: ScratchEngine | None = None
    driver: subprocess.Popen[str] | None = None
    log = (root / DRIVER_LOG).open("w")
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, timeout=30)
        engine = start_scratch_engine(root, size_mb=600, exec_root=exec_root, netns=netns)
        load_base(docker_client, engine, IMAGE)
        env = {**os.environ, "DOCKER_HOST": engine.url, "PYTHONPATH": str(REPO)}
        driver = subprocess.Popen(
            ["nsenter", f"--net={netns}", sys.executable, "-m", "tests.engine.test_engine_restart"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            cwd=REPO,
            env=env,
        )
        lab = Lab(engine, netns, exec_root, driver)
        yield lab
        engine = lab.engine
    finally:
        log.close()
        if driver is not None:
            driver.kill()
            driver.wait(timeout=30)
        if engine is not None:
            engine.client.close()
            engine.kill()
        subprocess.run(["umount", "-l", str(root / "data")], timeout=30, check=False)
        subprocess.run(["ip", "netns", "delete", name], timeout=30, check=False)
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(exec_root, ignore_errors=True)


def _line(*command: str) -> str:
    return " ".join(["docker run -d -p", f"127.0.0.1:{HOST_PORT}:8000", IMAGE, *command])


def _plain_words(text: str) -> None:
    assert "stopped answering" in text and "portbinding doctor --install" in text, text
    assert "reconnects by itself" in text and "no kernel restart" in text, text
    assert "Traceback" not in text and 'File "' not in text, text


def test_widgets_and_cli_explain_a_stopped_engine_and_recover_when_it_returns(lab: Lab) -> None:
    """SIGTERM mid-job: plain words, no stuck "busy"; CLI exits 3; after a restart the same widgets work."""
    first = lab.send(do="run", line=_line())
    assert first["container"] and "Started" in first["messages"]["console"], first
    assert first["engine"] == lab.engine.url, "the widgets use the scratch engine, not the course's"
    probed = lab.send(do="probe")
    assert probed["light"] == "green", probed

    # Mid-job: the container never listens, so Run is still waiting for it when the engine stops.
    started = lab.send(do="click", widget="console", button="_run", line=_line("sleep", "300"))
    assert started["busy"]["console"], started
    waiting = lab.send(do="until_waiting")
    assert "waiting up to" in waiting["messages"]["console"], waiting
    lab.engine.stop()
    after = lab.send(do="wait_idle", widget="console")
    assert after["idle"] and not after["busy"]["console"], f"the console stayed busy: {after}"
    _plain_words(after["messages"]["console"])
    assert after["run_enabled"], "Run is clickable again"

    stopped = lab.send(do="probe")
    _plain_words(stopped["messages"]["light"])
    doctor = lab.send(do="doctor")
    assert not doctor["doctor_found"], doctor
    _plain_words(doctor["doctor_view"])

    env = bare_env(DOCKER_HOST=lab.engine.url)
    for command in (["ps"], ["diagnose", str(first["container"])]):
        result = run_as([*CLI, *command], env, hide_sockets=True, user=None)
        assert result.returncode == 3, (command, result.returncode, result.stdout, result.stderr)
        assert "No container engine answers" in result.stderr, result.stderr
        assert "portbinding doctor --install" in result.stderr and "Traceback" not in result.stderr, (
            result.stderr
        )

    lab.restart()
    again = lab.send(do="run", line=_line())
    assert again["container"] and "Started" in again["messages"]["console"], again
    assert again["container"] != first["container"], f"the same container came back: {again}"
    assert lab.send(do="probe")["light"] == "green", "the same light probes the new container"
    back = lab.send(do="doctor")
    assert back["doctor_found"], back
    ended = lab.send(do="end")
    assert again["container"] in ended["removed"], ended


# ------------------------------------------------------------------ the driver (inside the namespace)


def _drive() -> None:
    """Build the widgets on the lesson engine (DOCKER_HOST), then obey JSON commands on stdin."""
    from portbinding.errors import PortBindingError
    from portbinding.probe import wait_until
    from portbinding.widgets import ContainerConsole, DoctorPanel, ProbeLight, end_lesson, session

    console = ContainerConsole(wait=JOB_TIMEOUT / 2)
    light = ProbeLight(path="/health", expect="http")
    doctor = DoctorPanel()
    widgets: dict[str, Any] = {"console": console, "light": light, "doctor": doctor}
    removed: list[str] = []
    idle = True

    def state() -> dict[str, Any]:
        engine = session.current_engine()
        return {
            "messages": {name: widget.message for name, widget in widgets.items()},
            "busy": {name: widget.worker.busy for name, widget in widgets.items()},
            "container": console.container.name if console.container is not None else None,
            "engine": engine.info.url if engine is not None else None,
            "light": light.light,
            "run_enabled": not console._run.disabled,
            "doctor_found": doctor.report is not None and doctor.report.engine is not None,
            "doctor_view": doctor._engine_view.value,
            "idle": idle,
            "removed": removed,
        }

    for raw in sys.stdin:
        command = json.loads(raw)
        action = command["do"]
        try:
            if action == "run":
                console.line = command["line"]
                console._run.click()
                idle = console.wait_idle(JOB_TIMEOUT)
            elif action == "click":
                console.line = command["line"]
                getattr(widgets[command["widget"]], command["button"]).click()
            elif action == "until_waiting":
                idle = wait_until(lambda: "waiting up to" in console.message, timeout=JOB_TIMEOUT)
            elif action == "wait_idle":
                idle = widgets[command["widget"]].wait_idle(JOB_TIMEOUT)
            elif action == "probe":
                if console.container is not None:
                    light.attach(console.container, 8000)
                light._probe.click()
                idle = light.wait_idle(JOB_TIMEOUT)
            elif action == "doctor":
                doctor._refresh.click()
                idle = doctor.wait_idle(JOB_TIMEOUT)
            elif action == "end":
                with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the replies
                    removed = end_lesson()
        except PortBindingError as error:  # a cell-style call: shown in the widget, reported here
            print(json.dumps({**state(), "error": str(error)}), flush=True)
            continue
        except Exception as error:
            print(json.dumps({"failure": f"{type(error).__name__}: {error}"}), flush=True)
            continue
        print(json.dumps(state()), flush=True)
        if action == "end":
            break


if __name__ == "__main__":
    _drive()
