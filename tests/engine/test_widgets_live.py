"""The widgets against the real engine, driven the way a learner drives them: by their buttons."""

from __future__ import annotations

import html
import json
import threading

import docker
import pytest
from docker.models.containers import Container

from portbinding.discovery import EngineInfo
from portbinding.engine import Engine
from portbinding.errors import ContainerNotFound, EngineUnavailable
from portbinding.probe import wait_until
from portbinding.scenarios import scenario
from portbinding.widgets import (
    ConceptDrill,
    ContainerConsole,
    DoctorPanel,
    PortMapDiagram,
    ProbeLight,
    session,
)
from portbinding.widgets._live import wait_listening

JOB_TIMEOUT = 90.0


def _loopback_line(host_port: int) -> str:
    return scenario("loopback_only").with_host_port(host_port).to_cli()


def _console(engine: Engine, host_port: int) -> ContainerConsole:
    console = ContainerConsole(initial="loopback_only", engine=engine)
    console.line = _loopback_line(host_port)  # never depend on 8888 being free
    return console


def _started(console: ContainerConsole) -> Container:
    """The console's container, which the last run must have started."""
    container = console.container
    assert container is not None, f"Run started nothing: {console.message}"
    return container


def _outcome(light: ProbeLight) -> str | None:
    return light.outcome


def _colour(light: ProbeLight) -> str:
    return light.light


def _click_and_wait(widget: ContainerConsole | ProbeLight | ConceptDrill, name: str) -> None:
    getattr(widget, name).click()
    assert widget.wait_idle(JOB_TIMEOUT), f"{type(widget).__name__}.{name} did not finish in {JOB_TIMEOUT} s"


def test_learner_path_loopback_probe_diagnose_fix_probe(engine: Engine, host_port: int) -> None:
    """Run the loopback scenario, probe (unreachable), diagnose (loopback_only), run the fix, probe (ok)."""
    console = _console(engine, host_port)
    light = ProbeLight(engine=engine)
    light.follow(console)
    diagram = PortMapDiagram(engine=engine)

    _click_and_wait(console, "_run")
    broken = _started(console)
    assert "listens on 127.0.0.1:8888" in console.message, console.message
    followed = light.container
    assert followed is not None and followed.id == broken.id, "the light follows the console's container"

    _click_and_wait(light, "_probe")
    assert _outcome(light) in ("reset", "empty_reply", "refused"), f"probe: {light.result}"
    assert _colour(light) == "red" and 'data-light="red"' in light._lamp.value, light.result

    _click_and_wait(light, "_diagnose")
    found = light.last_diagnosis
    assert found is not None and found.cause == "loopback_only", found.explain() if found else light.message
    assert "--ServerApp.ip=0.0.0.0" in light._report.value, "the fix line is shown"

    hops = diagram.show(broken, 8888)
    assert [hop.ok for hop in hops] == [True, True, False], diagram.alt_text
    assert "broken (red)" in diagram.alt_text and "127.0.0.1:8888" in diagram.alt_text, diagram.alt_text
    assert 'data-hop="address" data-ok="red"' in diagram._svg.value, "the loopback hop is drawn red"
    summary = diagram.summary
    assert summary.startswith("✖ The path stops at hop 3 of 3"), f"red, but in words? {summary}"
    assert summary in html.unescape(diagram._summary.value), "the words are on the page, not only in alt"

    _click_and_wait(light, "_apply")
    assert console.line.endswith("--ServerApp.ip=0.0.0.0"), console.line
    _click_and_wait(console, "_run")
    fixed = _started(console)
    assert fixed.id != broken.id, console.message
    assert broken.id not in {c.id for c in engine.course_containers(session=engine.session)}, (
        "Run replaces the console's previous container"
    )
    _click_and_wait(light, "_probe")
    assert _outcome(light) == "ok" and _colour(light) == "green", f"after the fix: {light.result}"
    assert [hop.ok for hop in diagram.show(fixed, 8888)] == [True, True, True], diagram.alt_text


def test_console_views_show_ps_port_inspect_and_logs(engine: Engine, host_port: int) -> None:
    """ps has the PORTS column, port reads like docker port, inspect is JSON, logs stream in."""
    console = _console(engine, host_port)
    container = console.run_line(_loopback_line(host_port))
    assert console.wait_idle(5), f"the console is still busy: {console.message}"
    ps = console._ps.value
    host_ip = console.target.spec.publish[0].host_ip if console.target else ""
    published = f"{host_ip or '0.0.0.0'}:{host_port}"
    assert str(container.name) in ps and f"{published}-&gt;8888/tcp" in ps, ps
    assert f"8888/tcp -&gt; {published}" in console._port.value, console._port.value
    inspect_text = console._inspect.value.split(">", 1)[1].rsplit("</pre>", 1)[0]
    view = json.loads(html.unescape(inspect_text))
    assert view["State"]["Status"] == "running" and "8888/tcp" in view["Config"]["ExposedPorts"], view
    assert view["NetworkSettings"]["Ports"]["8888/tcp"][0]["HostPort"] == str(host_port), view
    # The log stream can still be catching up when the run is idle (seen on Podman): wait for it.
    logged = wait_until(
        lambda: any("http://127.0.0.1:8888/" in line for line in console.log_lines), timeout=10
    )
    assert logged, console.log_lines
    assert "docker run -d -p" in console._cli.value, console._cli.value

    console.stop()
    assert engine.state(container)["Status"] == "exited", "Stop stops it"
    assert "Exited" in console._ps.value, console._ps.value
    console.remove()
    left = {c.id for c in engine.course_containers()}
    assert console.container is None and container.id not in left, "Remove removes the container"
    assert console._stop.disabled and console._remove.disabled, "nothing left to stop or remove"


def test_buttons_are_disabled_while_the_worker_runs(engine: Engine, host_port: int) -> None:
    """While a job holds the worker, Run/Stop/Remove are disabled and a click is refused; after, Run works."""
    console = _console(engine, host_port)
    release = threading.Event()
    started = threading.Event()

    def hold() -> None:
        started.set()
        release.wait(30)

    assert console.worker.submit(hold, label="Holding the worker"), "the idle worker refused a job"
    assert started.wait(10), "the job never started"
    assert console._run.disabled and console._stop.disabled and console._remove.disabled, "buttons stay live"
    console._run.click()
    assert "Still busy: Holding the worker" in console.message, console.message
    release.set()
    assert console.wait_idle(10), f"the worker did not finish: {console.message}"
    assert not console._run.disabled and console.container is None, "the refused click ran nothing"
    _click_and_wait(console, "_run")
    assert console.container is not None and not console._remove.disabled, console.message


def test_engine_unavailable_inside_a_job_is_a_friendly_message() -> None:
    """An engine that stops answering mid-job shows message + next step, never a traceback."""
    dead_client = docker.DockerClient(base_url="unix:///nonexistent/docker.sock", version="1.41", timeout=2)
    info = EngineInfo(
        "unix:///nonexistent/docker.sock", "a test", "docker", "0", "1.41", False, "127.0.0.1", "test"
    )
    console = ContainerConsole(engine=Engine(dead_client, info, owner="tests"))
    console.line = "docker run -d -p 18888:8888 portbinding/notebook:1.0"
    _click_and_wait(console, "_run")
    assert isinstance(console.worker.last_error, EngineUnavailable), console.worker.last_error
    text = console.message
    assert "stopped answering" in text and "Next step:" in text, text
    assert "Traceback" not in text and 'File "' not in text, text

    def fail() -> None:
        raise EngineUnavailable("No container engine answers.", hint="start Docker, then run the cell again")

    assert console.worker.submit(fail, label="Checking the engine"), "the idle worker refused a job"
    assert console.wait_idle(10), f"the worker did not finish: {console.message}"
    expected = "No container engine answers.\nNext step: start Docker, then run the cell again"
    assert console.message == expected, console.message


def test_a_crashed_scenario_is_explained(engine: Engine, host_port: int) -> None:
    """crash-before-listen exits: the console says so, the light is red and the diagnosis is crashed."""
    console = ContainerConsole(engine=engine)
    light = ProbeLight(engine=engine)
    light.follow(console)
    container = console.run_line(scenario("crashed").with_host_port(host_port).to_cli())
    assert "exited" in console.message, console.message
    probed = light.probe()
    assert probed.outcome == "refused" and light.light == "red", (probed, light.light)
    found = light.diagnose()
    assert found.cause == "crashed", found.explain()
    assert engine.state(container)["ExitCode"] != 0, engine.state(container)


def test_a_server_that_is_still_starting_gets_the_amber_light(engine: Engine) -> None:
    """slow-start sleeps before it listens: the probe fails, nothing listens inside, so the light is amber."""
    console = ContainerConsole(engine=engine)
    light = ProbeLight(engine=engine)
    light.follow(console)
    console.run_scenario("still_starting", wait=0)
    assert "STARTUP_DELAY=" in console.line, console.line
    result = light.probe()
    assert result.outcome in ("reset", "empty_reply", "refused"), result
    assert _colour(light) == "amber" and 'data-light="amber"' in light._lamp.value, light.result
    found = light.diagnose()
    assert found.cause == "still_starting", found.explain()


def test_concept_drill_runs_a_prediction_and_removes_its_container(engine: Engine, host_port: int) -> None:
    """Loopback bind, predicted unreachable: reality agrees, the why names the loopback, nothing remains."""
    drill = ConceptDrill(engine=engine)
    before = {c.id for c in engine.course_containers(session=engine.session)}
    drill._host_port.value = host_port
    drill._bind.value = "127.0.0.1"
    drill._predict.value = False
    _click_and_wait(drill, "_run")
    result = drill.result
    assert result is not None, drill.message
    assert not result.reachable_local and result.local.outcome in ("reset", "empty_reply", "refused"), result
    assert result.cause == "loopback_only" and result.correct, result
    assert "own loopback" in " ".join(result.reasons), result.reasons
    assert 'data-correct="true"' in drill._result.value and "1 / 1" in drill._score.value, drill._score.value
    after = {c.id for c in engine.course_containers(session=engine.session)}
    assert after == before, "the drill removed its container"


def test_concept_drill_needs_a_prediction(engine: Engine) -> None:
    """Run without a prediction asks for one and starts nothing."""
    drill = ConceptDrill(engine=engine)
    _click_and_wait(drill, "_run")
    assert "Make your prediction first" in drill.message and drill.result is None, drill.message


def test_doctor_panel_reports_the_engine_and_the_built_images(engine: Engine) -> None:
    """With an engine and the images built, the doctor is ready and says where ports open."""
    doctor = DoctorPanel(engine=engine)
    report = doctor.refresh()
    assert report.ready, report
    engine_view = doctor._engine_view.value
    assert "Engine found" in engine_view and engine.publish_host in engine_view, engine_view
    assert "All exercise images are built" in doctor._images_view.value, doctor._images_view.value
    assert doctor._build.disabled, "nothing to build"
    assert doctor.build_missing() == [] and "nothing to do" in doctor.message, doctor.message


def test_lesson_engine_is_shared_and_end_lesson_removes_its_containers(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, host_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """lesson_engine() connects once per kernel; end_lesson() removes exactly its containers."""
    monkeypatch.setattr(session, "_engine", None)
    monkeypatch.setattr("atexit.register", lambda *args: None)  # this test cleans up itself
    lesson = session.lesson_engine()
    try:
        assert session.lesson_engine() is lesson, "one engine per kernel"
        started = lesson.run(scenario("ok").with_host_port(host_port))
        removed = session.end_lesson()
        assert removed == [started.name], f"end_lesson removed {removed}, not {started.name}"
        said = capsys.readouterr().out
        assert "Removed 1 container(s)" in said, said
        left = lesson.course_containers(session=lesson.session)
        assert left == [], f"the lesson's containers outlived end_lesson: {left}"
    finally:
        lesson.cleanup(session=lesson.session)
        lesson.client.close()


def test_a_crashed_container_started_with_p_shows_the_mapping_it_asked_for(
    engine: Engine, host_port: int
) -> None:
    """The console's status never says "no -p" for a line with one: the mapping went with the container."""
    console = ContainerConsole(engine=engine)
    crashed = scenario("crashed")
    console.run_line(crashed.with_host_port(host_port).to_cli())
    status = html.unescape(console._status.value)
    assert "no -p" not in status, f"the status denies the -p the learner typed: {status}"
    asked = f"{host_port}:{crashed.container_port}"
    assert asked in status and "not running" in status and "nothing published" not in status, (
        f"the status should name the -p asked for and say its port closed with the container: {status}"
    )


def _ok_line(host_port: int) -> str:
    return scenario("ok").with_host_port(host_port).to_cli()


def _says_gone(name: str, light: ProbeLight, diagram: PortMapDiagram, how: str = "") -> None:
    lamp = html.unescape(light._lamp.value)
    assert f"{name} was removed {how}" in lamp, f"the light should say {name} was removed {how}: {lamp}"
    assert light.light != "green" and "Reachable" not in lamp, f"green for a removed container: {lamp}"
    assert name in lamp and "removed" in lamp, f"the light should say {name} was removed: {lamp}"
    assert name in light._message.said, f"screen readers were not told: {light._message.said!r}"
    assert "yet" not in light._target.value, f"nothing attached *yet*? {light._target.value}"
    assert diagram.hops == (), f"the port map still draws a path into a removed container: {diagram.alt_text}"
    assert name in diagram.alt_text and "removed" in diagram.alt_text, diagram.alt_text
    assert "data-ok=" not in diagram._svg.value, "the port map still draws coloured hops"


def test_lights_and_port_maps_say_when_their_container_is_removed(
    engine: Engine, host_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After Remove, end_lesson() or a `docker rm` elsewhere, no light stays green and no port map draws."""
    monkeypatch.setattr(session, "_engine", engine)  # end_lesson() ends this test's session
    console = ContainerConsole(engine=engine)
    light = ProbeLight(engine=engine)
    light.follow(console)
    diagram = PortMapDiagram(engine=engine)
    diagram.follow(console)

    def run_green() -> Container:
        container = console.run_line(_ok_line(host_port))
        # Started is not listening (Jupyter takes seconds, more on a busy machine): wait for the socket.
        assert wait_listening(engine, container, timeout=90).listening, "the server never listened"
        assert diagram.wait_idle(JOB_TIMEOUT), diagram.message
        diagram.refresh()
        assert light.probe().ok and light.light == "green", light.result
        said = light._message.said
        assert said.startswith("Probe: Reachable, ok"), f"the verdict was not read aloud: {said!r}"
        assert [hop.ok for hop in diagram.hops] == [True, True, True], diagram.alt_text
        return container

    first = run_green()
    console.remove()
    assert diagram.wait_idle(JOB_TIMEOUT), diagram.message
    _says_gone(str(first.name), light, diagram, "with the console's Remove button")

    second = run_green()
    alone = ProbeLight(engine=engine)
    alone.attach(second, 8888)
    assert alone.probe().ok, alone.result
    session.end_lesson()
    assert diagram.wait_idle(JOB_TIMEOUT), diagram.message
    _says_gone(str(second.name), light, diagram, "by end_lesson()")  # not "from the console"
    _says_gone(str(second.name), alone, diagram, "by end_lesson()")
    assert console.container is None, "the console still acts on a container end_lesson() removed"
    assert "removed" in html.unescape(console._status.value), console._status.value

    third = run_green()
    engine.client.containers.get(third.id).remove(force=True)  # a learner's `docker rm -f` in a terminal
    with pytest.raises(ContainerNotFound):
        light.probe()
    with pytest.raises(ContainerNotFound):
        diagram.refresh()
    _says_gone(str(third.name), light, diagram)
