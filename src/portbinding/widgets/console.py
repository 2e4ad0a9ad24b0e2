"""ContainerConsole: choose a scenario or type a ``docker run`` line, run it, watch it.

The line is checked against the course policy before anything touches the engine, so a
forbidden option is explained at once, even with no engine at all. The console shows the exact
CLI equivalent of what it runs, follows the container's logs, and has ``docker ps`` /
``docker port`` / ``docker inspect`` views of the live state. It manages one container at a
time: Run replaces the container it started before, so a fix can reuse the same host port.

About 530 lines, on purpose: one composite widget whose Run, Stop, Remove and live views share
one container and one worker thread; rendering the views' text is :mod:`_live`'s job.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ipywidgets as widgets
from docker.models.containers import Container

from portbinding.command import RunSpec, parse_run
from portbinding.diagnose import Expect
from portbinding.engine import Engine, preferred_port
from portbinding.errors import ContainerNotFound, EngineUnavailable, ImageMissing, PortBindingError, PortInUse
from portbinding.images import split_image_ref
from portbinding.ports import PortMapping
from portbinding.scenarios import SCENARIOS, Scenario
from portbinding.widgets import _live
from portbinding.widgets._base import FixOffer, WorkerBacked
from portbinding.widgets._ui import MessageArea, badge, button, code, esc, pre, table
from portbinding.widgets._worker import Worker
from portbinding.widgets.session import announce_removed, lesson_engine, watch_removals

LOGGER = logging.getLogger(__name__)

MAX_LOG_LINES = 300
DEFAULT_WAIT_S = 20.0


@dataclass(frozen=True)
class RunTarget:
    """What the console started, and where its service should answer."""

    container: Container
    spec: RunSpec
    container_port: int | None
    path: str
    expect: Expect
    scenario: str | None = None


RunObserver = Callable[[RunTarget | None], None]


class ContainerConsole(WorkerBacked, widgets.VBox):  # type: ignore[misc]
    """Run a scenario or a policy-checked ``docker run`` line and watch the container.

    Every engine step runs on the widget's worker thread when a button is clicked, and in the
    caller's thread when the public methods are called from a cell (``run_scenario``,
    ``run_line``, ``stop``, ``remove``, ``refresh_views``).
    """

    def __init__(
        self,
        *,
        scenarios: Sequence[Scenario] = SCENARIOS,
        initial: str | None = None,
        engine: Engine | None = None,
        wait: float = DEFAULT_WAIT_S,
    ) -> None:
        self._catalogue = {item.id: item for item in scenarios}
        if initial is not None and initial not in self._catalogue:
            raise PortBindingError(
                f"There is no scenario called {initial!r} in this console.",
                hint=f"choose one of: {', '.join(self._catalogue)}",
            )
        self._given_engine = engine
        self._wait = wait
        self._target: RunTarget | None = None
        self._observers: list[RunObserver] = []
        self._log_lock = threading.Lock()
        self._log_stop = threading.Event()
        self._filling = True  # choosing a scenario fills the run line

        self._title = widgets.HTML(
            "<b>Container console</b> — run a scenario or your own <code>docker run</code> line"
        )
        self._scenarios = widgets.Dropdown(
            options=[("— choose a scenario —", None)] + [(f"{s.title} ({s.id})", s.id) for s in scenarios],
            value=None,
            description="Scenario",
            layout=widgets.Layout(width="auto", min_width="420px"),
        )
        self._scenarios.index = 0  # shown as "— choose a scenario —", not blank (value stays None)
        self._scenarios.add_class("pbl-scenario")
        self._line = widgets.Text(
            placeholder="docker run -d -p 8888:8888 portbinding/notebook:1.0",
            description="Run line",
            layout=widgets.Layout(width="98%"),
        )
        self._line.add_class("pbl-run-line")
        self._run = button(
            "Run",
            css_class="pbl-run",
            style="primary",
            icon="play",
            tooltip="Check the line against the course policy and start the container",
        )
        self._stop = button(
            "Stop", css_class="pbl-stop", icon="stop", tooltip="docker stop: keep it, stopped"
        )
        self._remove = button("Remove", css_class="pbl-remove", icon="trash", tooltip="docker rm -f")
        self._cli = widgets.HTML()
        self._cli.add_class("pbl-cli")
        self._status = widgets.HTML()
        self._status.add_class("pbl-status")
        self._message = MessageArea()
        self._logs = widgets.Output(
            layout=widgets.Layout(
                max_height="260px", overflow="auto", border="1px solid var(--jp-border-color2, #ddd)"
            )
        )
        self._logs.add_class("pbl-logs")
        self._ps = widgets.HTML()
        self._port = widgets.HTML()
        self._inspect = widgets.HTML()
        self._views = widgets.Tab(
            children=[self._logs, self._ps, self._port, self._inspect],
            titles=["logs", "ps", "port", "inspect"],
        )
        self._views.add_class("pbl-views")
        self._session = widgets.HTML()
        self._session.add_class("pbl-session")

        self._worker = Worker(
            self._message,
            buttons=[self._run, self._stop, self._remove],
            on_idle=self._sync_buttons,
            name="portbinding-console",
        )
        self._offer = FixOffer(self._worker)
        self._scenarios.observe(self._on_scenarios_value, names="value")
        self._run.on_click(self._on_run_click)
        self._stop.on_click(self._on_stop_click)
        self._remove.on_click(self._on_remove_click)
        self._views.observe(self._on_views_selected_index, names="selected_index")

        super().__init__(
            children=[
                self._title,
                self._scenarios,
                self._line,
                widgets.HBox([self._run, self._stop, self._remove]),
                self._message,
                self._offer,
                self._cli,
                self._status,
                self._views,
                self._session,
            ]
        )
        self.add_class("pbl-console")
        self.add_class("pbl-keys")  # keys pressed in it stay with it (see _announce.py)
        watch_removals(self._on_removed)
        if initial is not None:
            self._scenarios.value = initial  # fills the run line (observer)
        self._sync_buttons()
        self._show_views_placeholder()

    # ------------------------------------------------------------------ public state

    @property
    def container(self) -> Container | None:
        """The container this console started last (None before the first run or after Remove)."""
        return self._target.container if self._target else None

    @property
    def target(self) -> RunTarget | None:
        """The last run: container, spec, container port, probe path and what should answer."""
        return self._target

    @property
    def line(self) -> str:
        """The run line in the text box."""
        return str(self._line.value)

    @line.setter
    def line(self, value: str) -> None:
        self._line.value = value
        self._preview(value)

    @property
    def engine(self) -> Engine:
        """The engine this console uses (the lesson's, unless one was given); connects on first use."""
        engine = self._given_engine or lesson_engine()
        self._show_session(engine)
        return engine

    def __repr__(self) -> str:  # the text/plain fallback where widgets cannot render
        name = self.container.name if self.container is not None else None
        return f"ContainerConsole(container={name!r})"

    def observe_runs(self, callback: RunObserver) -> None:
        """Call ``callback(target)`` after every run (and with None after Remove)."""
        self._observers.append(callback)

    # ------------------------------------------------------------------ public actions

    def run_scenario(self, scenario_id: str, *, wait: float | None = None) -> Container:
        """Start scenario ``scenario_id`` (its fixed host ports moved to a free one, 8888 if free).

        Waits up to ``wait`` seconds (default: the console's) for the app to open its port.
        """
        item = self._scenario(scenario_id)
        return self._worker.call(lambda: self._run_scenario_job(item, wait), label=f"Starting {item.title}")

    def run_line(self, line: str, *, wait: float | None = None) -> Container:
        """Check ``line`` against the course policy, then start it exactly as written (always detached)."""
        spec = self._check(line)
        self._line.value = line  # the text box shows what runs, typed or not
        return self._worker.call(lambda: self._run_job(spec, wait=wait), label=f"Starting {spec.image}")

    def stop(self) -> None:
        """Stop the console's container (it stays, stopped: ``docker stop``)."""
        self._worker.call(self._stop_job, label="Stopping the container")

    def remove(self) -> None:
        """Remove the console's container (``docker rm -f``)."""
        self._worker.call(self._remove_job, label="Removing the container")

    def refresh_views(self) -> None:
        """Re-read status, ps, port and inspect from the engine."""
        self._worker.call(self._refresh_job, label="Refreshing the views")

    # ------------------------------------------------------------------ handlers

    def _on_scenarios_value(self, change: dict[str, Any]) -> None:
        scenario_id = change["new"]
        if scenario_id is None or not self._filling:
            return
        self.line = self._scenario_spec(self._catalogue[scenario_id]).to_cli()

    def _on_run_click(self, _: widgets.Button) -> None:
        try:
            spec = self._check(self.line)
        except PortBindingError:
            return  # _check has shown the message; nothing reached the engine
        self._worker.submit(lambda: self._run_job(spec), label=f"Starting {spec.image}")

    def _on_stop_click(self, _: widgets.Button) -> None:
        self._worker.submit(self._stop_job, label="Stopping the container")

    def _on_remove_click(self, _: widgets.Button) -> None:
        self._worker.submit(self._remove_job, label="Removing the container")

    def _on_views_selected_index(self, _: dict[str, Any]) -> None:
        if self._target is not None:
            self._worker.submit(self._refresh_job, label="Refreshing the views", quiet=True)

    # ------------------------------------------------------------------ jobs

    def _run_scenario_job(self, item: Scenario, wait: float | None) -> Container:
        self._discard_current(self.engine)  # frees its host port before choosing one
        spec = self._scenario_spec(item)
        self._filling = False  # the line below is the one to show, not a fresh pick for the dropdown
        try:
            self._scenarios.value = item.id
        finally:
            self._filling = True
        self.line = spec.to_cli()
        return self._run_job(spec, wait=wait, scenario=item)

    def _run_job(
        self, spec: RunSpec, *, wait: float | None = None, scenario: Scenario | None = None
    ) -> Container:
        self._offer.clear()
        engine = self.engine
        spec = spec.replace(detach=True)
        self._discard_current(engine)
        self._cli.value = f"<b>CLI equivalent:</b> {code(spec.to_cli())}"
        self._message.busy(f"Starting: {spec.to_cli()}")
        try:
            container = engine.run(spec)
        except (ImageMissing, PortInUse) as error:
            raise self._offer_repair(
                error, spec, lambda fixed: self._rerun(fixed, wait=wait, scenario=scenario)
            ) from error
        port, path, expect = self._service(spec, scenario)
        self._target = RunTarget(container, spec, port, path, expect, scenario.id if scenario else None)
        self._follow_logs(engine, container)
        timeout = self._wait if wait is None else wait
        self._message.busy(
            f"Started {container.name}; waiting up to {timeout:g} s for the app inside to open its port…"
        )
        settled = _live.wait_listening(engine, container, timeout=timeout)
        self._render_status(engine)
        if not settled.running:
            self._message.info(
                f"{container.name} exited (code {settled.exit_code}) before it opened a port. "
                "Its logs (logs tab) say why; the Diagnose button of a probe light explains it."
            )
        elif settled.listening:
            listening = ", ".join(str(item) for item in settled.listeners)
            self._message.ok(
                f"Started {container.name}. Inside the container it listens on {listening}. "
                "Now probe it from your machine."
            )
        else:
            self._message.info(
                f"Started {container.name}, but nothing listens inside after {settled.waited_s:.0f} s: "
                "the app may still be starting. Probe again in a moment, or read its logs."
            )
        self._refresh_views(engine)
        self._notify()
        return container

    def _rerun(self, spec: RunSpec, *, wait: float | None, scenario: Scenario | None) -> Container:
        """Run a repaired spec (a free port, a freshly built image); the run line shows it."""
        self.line = spec.to_cli()
        return self._run_job(spec, wait=wait, scenario=scenario)

    def _stop_job(self) -> None:
        target = self._require_target()
        engine = self.engine
        engine.stop(target.container)
        self._render_status(engine)
        self._refresh_views(engine)
        self._message.info(
            f"Stopped {target.container.name}: its published ports are closed now "
            "(the mapping lives only while the container runs)."
        )
        self._notify()

    def _on_removed(self, names: frozenset[str], how: str) -> None:
        """Another part of the lesson removed this console's container (``end_lesson()``)."""
        target = self._target
        if target is None or str(target.container.name) not in names:
            return
        self._log_stop.set()
        self._target = None
        self._status.value = f"<b>{esc(target.container.name)}</b>: removed {esc(how)}"
        self._port.value = pre("(the container is gone)", css_class="pbl-port")
        self._inspect.value = pre("(the container is gone)", css_class="pbl-inspect")
        self._sync_buttons()
        self._notify()

    def _remove_job(self) -> None:
        target = self._require_target()
        self._discard_current(self.engine)
        announce_removed([str(target.container.name)], "with the console's Remove button")
        with self._log_lock:
            note = {
                "output_type": "stream",
                "name": "stdout",
                "text": "(the container was removed; above: its last logs)\n",
            }
            self._logs.outputs = (*self._logs.outputs, note)
        self._render_status(self.engine)
        self._refresh_views(self.engine)
        self._message.info(f"Removed {target.container.name}.")
        self._notify()

    def _refresh_job(self) -> None:
        engine = self.engine
        self._render_status(engine)
        self._refresh_views(engine)

    # ------------------------------------------------------------------ helpers

    def _check(self, line: str) -> RunSpec:
        """The policy check: no engine needed; a refusal is shown as a message and raised."""
        try:
            spec = parse_run(line)
        except PortBindingError as error:
            self._message.error(error)
            raise
        self._preview(spec.replace(detach=True).to_cli())
        return spec

    def _scenario(self, scenario_id: str) -> Scenario:
        try:
            return self._catalogue[scenario_id]
        except KeyError:
            error = PortBindingError(
                f"There is no scenario called {scenario_id!r} in this console.",
                hint=f"choose one of: {', '.join(self._catalogue)}",
            )
            self._message.error(error)
            raise error from None

    @staticmethod
    def _scenario_spec(item: Scenario) -> RunSpec:
        """The scenario's run line on a host port that is free now (its own, e.g. 8888, when possible)."""
        fixed = [m.host_port for m in item.run.publish if m.host_port]
        if not fixed:
            return item.run
        return item.with_host_port(preferred_port(fixed[0]))

    def _service(self, spec: RunSpec, scenario: Scenario | None) -> tuple[int | None, str, Expect]:
        """Which container port to probe, on which path, expecting what."""
        known = scenario or next(
            (
                s
                for s in self._catalogue.values()
                if split_image_ref(s.run.image)[0] == split_image_ref(spec.image)[0]
            ),
            None,
        )
        tcp = [m.container_port for m in spec.publish if m.protocol == "tcp"]
        port = tcp[0] if tcp else (known.container_port if known else None)
        if scenario is not None:
            port = scenario.container_port
        if known is not None:
            return port, known.path, known.expect
        return port, "/", "http"

    def _discard_current(self, engine: Engine) -> None:
        """Stop following the logs and remove the container this console started, if any."""
        self._log_stop.set()
        target, self._target = self._target, None
        if target is not None:
            engine.remove(target.container)

    def _require_target(self) -> RunTarget:
        if self._target is None:
            raise PortBindingError(
                "There is no container to act on yet.",
                hint="choose a scenario or type a run line, then click Run",
            )
        return self._target

    def _notify(self) -> None:
        for callback in list(self._observers):
            try:
                callback(self._target)
            except Exception as error:  # one observer's failure must not hide the run's result
                LOGGER.debug("run observer failed", exc_info=True)
                self._message.error(error)

    def _preview(self, cli: str) -> None:
        if cli.strip():
            self._cli.value = f"<b>CLI equivalent:</b> {code(cli)}"

    def _sync_buttons(self) -> None:
        nothing = self._target is None
        self._stop.disabled = nothing
        self._remove.disabled = nothing

    def _show_session(self, engine: Engine) -> None:
        if not self._session.value:
            self._session.value = (
                f'<small style="color:var(--jp-ui-font-color2,#666)">engine session '
                f'<span class="pbl-session-id" data-session="{esc(engine.session)}">'
                f"{esc(engine.session)}</span>"
                " — <code>end_lesson()</code> removes its containers</small>"
            )

    # ------------------------------------------------------------------ views

    def _follow_logs(self, engine: Engine, container: Container) -> None:
        stop = threading.Event()
        with self._log_lock:
            self._log_stop.set()
            self._log_stop = stop
            self._logs.outputs = ()
        threading.Thread(
            target=self._log_loop,
            args=(engine, container, stop),
            daemon=True,
            name="portbinding-console-logs",
        ).start()

    def _log_loop(self, engine: Engine, container: Container, stop: threading.Event) -> None:
        # Runs until the container stops (the engine then ends the stream) or is replaced. It only
        # sets widget state: print() from a thread would be lost under ipykernel 7.
        try:
            for line in engine.stream_logs(container):
                if stop.is_set():
                    return
                self._append_log(line, stop)
        except EngineUnavailable:
            LOGGER.debug("log stream of %s ended: the engine stopped", container.name, exc_info=True)
            self._append_log(
                "(the container engine stopped answering: no more logs from this container)", stop
            )
        except Exception:
            LOGGER.debug("log stream of %s ended with an error", container.name, exc_info=True)

    def _append_log(self, line: str, stop: threading.Event) -> None:
        with self._log_lock:
            if stop.is_set():
                return
            entry = {"output_type": "stream", "name": "stdout", "text": line + "\n"}
            self._logs.outputs = (*self._logs.outputs[-(MAX_LOG_LINES - 1) :], entry)

    @property
    def log_lines(self) -> list[str]:
        """The log lines shown in the logs tab."""
        return [str(o.get("text", "")).rstrip("\n") for o in self._logs.outputs]

    def _render_status(self, engine: Engine) -> None:
        target = self._target
        if target is None:
            self._status.value = ""
            return
        container = target.container
        try:
            state = engine.state(container)
            published = engine.ports(container)
        except ContainerNotFound:
            self._status.value = f"<b>{esc(container.name)}</b>: removed"
            return
        running = state.get("Status") == "running"
        state_text = _live.status_text(state)
        asked = list(target.spec.publish)
        url = None
        if running and target.container_port is not None:
            with contextlib.suppress(PortBindingError):
                url = engine.url(container, target.container_port, target.path)
        checked = datetime.now().strftime("%H:%M:%S")  # a snapshot: the ps tab and Stop refresh it
        rows = [
            ["container", f"<b>{esc(container.name)}</b> ({esc(str(container.id)[:12])})"],
            ["image", esc(target.spec.image)],
            ["state", badge(running, yes=state_text, no=state_text) + esc(f"  (checked {checked})")],
            ["published", esc(_published_words(published, asked, running=running))],
            ["URL from here", code(url) if url else esc(_no_url_words(running))],
        ]
        self._status.value = table(["", ""], rows, css_class="pbl-status-table")

    def _refresh_views(self, engine: Engine) -> None:
        self._ps.value = pre(self._ps_text(engine), css_class="pbl-ps")
        target = self._target
        if target is None:
            self._port.value = pre("(no container)", css_class="pbl-port")
            self._inspect.value = pre("(no container)", css_class="pbl-inspect")
            return
        try:
            published = engine.ports(target.container)
            self._port.value = pre(
                "\n".join(str(p) for p in published) or "(nothing published)", css_class="pbl-port"
            )
            self._inspect.value = pre(_live.inspect_view(target.container.attrs), css_class="pbl-inspect")
        except ContainerNotFound:
            self._port.value = pre("(the container is gone)", css_class="pbl-port")
            self._inspect.value = pre("(the container is gone)", css_class="pbl-inspect")

    @staticmethod
    def _ps_text(engine: Engine) -> str:
        rows = _live.ps_rows(engine.course_containers())
        headers = ["CONTAINER ID", "IMAGE", "STATUS", "PORTS", "NAMES"]
        widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
        lines = [
            "   ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
            for row in [headers, *rows]
        ]
        return "\n".join(lines) + ("" if rows else "\n(no course containers)")

    def _show_views_placeholder(self) -> None:
        for view, name in ((self._ps, "ps"), (self._port, "port"), (self._inspect, "inspect")):
            view.value = pre(f"(run a container to see `docker {name}` here)")


def _published_words(published: Sequence[object], asked: Sequence[PortMapping], *, running: bool) -> str:
    """The status table's "published" cell: what is open now, and what the run line asked for.

    A stopped or crashed container has no open ports although its line had ``-p``: say both, so
    the learner never reads "no -p" for a line they typed with one. (Podman still lists an exited
    container's ports; they are closed all the same.)
    """
    if published and running:
        return ", ".join(str(p) for p in published)
    flags = " ".join(f"-p {m.to_spec()}" for m in asked)
    if not running and (asked or published):
        opens = flags or ", ".join(str(p) for p in published)
        return f"nothing now: the container is not running, and {opens} opens only while it runs"
    if not asked:
        return "nothing (the run line has no -p)"
    return f"nothing, although the run line asked for {flags}"


def _no_url_words(running: bool) -> str:
    if not running:
        return "none: the container is not running (its logs say why)"
    return "none: nothing published for the service's port"
