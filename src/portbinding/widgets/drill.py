"""ConceptDrill: choose the four numbers, predict, then let a real container answer.

The learner picks the host port, the container port (8888, where Jupyter listens, or 9999,
where nothing does), the address Jupyter binds inside the container, and the host address the
port is published on; predicts whether it will be reachable from this machine (and from
another machine); then Run starts the real container, probes it from both vantage points,
diagnoses it, shows prediction against reality and why, and removes the container.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import ipywidgets as widgets

from portbinding.command import RunSpec
from portbinding.diagnose import Cause, diagnose
from portbinding.engine import Engine, preferred_port
from portbinding.errors import ImageMissing, PortBindingError, PortInUse
from portbinding.ports import PortMapping, bracket_host, validate_port
from portbinding.probe import ProbeResult, is_jupyter, probe_http
from portbinding.widgets import _live
from portbinding.widgets._base import FixOffer, WorkerBacked
from portbinding.widgets._ui import LINE_HEIGHT, MessageArea, badge, button, code, esc, table
from portbinding.widgets._worker import Worker

Address: TypeAlias = Literal["0.0.0.0", "127.0.0.1"]
JUPYTER_PORT = 8888
WRONG_PORT = 9999
IMAGE_FOR_BIND: dict[str, str] = {
    "0.0.0.0": "portbinding/notebook:1.0",
    "127.0.0.1": "portbinding/notebook-loopback:1.0",
}


@dataclass(frozen=True)
class DrillSettings:
    """The four choices of one drill run."""

    host_port: int
    container_port: int
    bind: Address
    publish_ip: Address

    def spec(self) -> RunSpec:
        """The run line these settings make (the image decides where Jupyter binds inside)."""
        mapping = PortMapping(self.container_port, "tcp", self.publish_ip, self.host_port)
        return RunSpec(image=IMAGE_FOR_BIND[self.bind], publish=(mapping,), detach=True)

    def reasons(self) -> list[str]:
        """Why it is (un)reachable, at the network layer, from the settings alone."""
        found = []
        if self.container_port != JUPYTER_PORT:
            found.append(
                f"-p {self.host_port}:{self.container_port} forwards to container port "
                f"{self.container_port}, but "
                f"Jupyter listens on {JUPYTER_PORT}: the forwarded connection finds nothing there."
            )
        if self.bind == "127.0.0.1":
            found.append(
                "Jupyter listens on 127.0.0.1 inside: the container's own loopback. Forwarded connections "
                "arrive on the container's network interface (eth0), where nothing listens."
            )
        if self.publish_ip == "127.0.0.1":
            found.append(
                "The host port is published on 127.0.0.1 only: programs on this machine can use it, other "
                "machines cannot (a sensible default for a notebook on a laptop)."
            )
        if not found:
            found.append(
                "Jupyter listens on every interface on 8888 and -p publishes it on every host address: every "
                "hop holds, from this machine and from the network."
            )
        return found


@dataclass(frozen=True)
class DrillResult:
    """One run: the settings, the predictions, what really happened, and why."""

    settings: DrillSettings
    cli: str
    predicted_local: bool
    predicted_network: bool | None
    local: ProbeResult
    network: ProbeResult | None
    network_address: str | None
    cause: Cause
    reasons: tuple[str, ...]

    @property
    def reachable_local(self) -> bool:
        return _answered(self.local)

    @property
    def reachable_network(self) -> bool | None:
        return None if self.network is None else _answered(self.network)

    @property
    def correct(self) -> bool:
        """True when every prediction made matched reality."""
        local_right = self.predicted_local == self.reachable_local
        if self.predicted_network is None or self.reachable_network is None:
            return local_right
        return local_right and self.predicted_network == self.reachable_network


class ConceptDrill(WorkerBacked, widgets.VBox):  # type: ignore[misc]
    """Predict, then run: a real container for each combination of ports and addresses."""

    def __init__(self, *, engine: Engine | None = None, wait: float = 30.0) -> None:
        self._given_engine = engine
        self._wait = wait
        self._results: list[DrillResult] = []
        style = {"description_width": "initial"}
        self._host_port = widgets.BoundedIntText(
            value=preferred_port(JUPYTER_PORT), min=1024, max=65535, description="Host port", style=style
        )
        self._container_port = widgets.ToggleButtons(
            options=[JUPYTER_PORT, WRONG_PORT],
            value=JUPYTER_PORT,
            description="Container port (right of the colon)",
            style=style,
        )
        self._bind = widgets.ToggleButtons(
            options=["0.0.0.0", "127.0.0.1"],
            value="0.0.0.0",
            description="Jupyter listens inside on",
            style=style,
        )
        self._publish = widgets.ToggleButtons(
            options=["0.0.0.0", "127.0.0.1"],
            value="0.0.0.0",
            description="Published on host address",
            style=style,
        )
        self._predict = widgets.ToggleButtons(
            options=[("yes", True), ("no", False)],
            value=None,
            description="Reachable from THIS machine?",
            style=style,
        )
        self._predict_network = widgets.ToggleButtons(
            options=[("yes", True), ("no", False)],
            value=None,
            description="…from ANOTHER machine? (optional)",
            style=style,
        )
        for name, item in (
            ("host-port", self._host_port),
            ("container-port", self._container_port),
            ("bind", self._bind),
            ("publish", self._publish),
            ("predict", self._predict),
            ("predict-network", self._predict_network),
        ):
            item.add_class(f"pbl-drill-{name}")
        self._cli = widgets.HTML()
        self._run = button(
            "Run it for real",
            css_class="pbl-drill-run",
            style="primary",
            icon="play",
            tooltip="Start the container, probe it, diagnose it, then remove it",
        )
        self._message = MessageArea()
        self._result = widgets.HTML()
        self._result.add_class("pbl-drill-result")
        self._score = widgets.HTML()
        self._worker = Worker(self._message, buttons=[self._run], name="portbinding-drill")
        self._offer = FixOffer(self._worker)
        self._run.on_click(self._on_run_click)
        for item in (self._host_port, self._container_port, self._bind, self._publish):
            item.observe(self._on_setting_value, names="value")
        super().__init__(
            children=[
                widgets.HTML(
                    f"<b>Concept drill</b> — Jupyter in these images listens on port {JUPYTER_PORT}. "
                    "Choose, predict, then run the real container."
                ),
                self._host_port,
                self._container_port,
                self._bind,
                self._publish,
                self._cli,
                self._predict,
                self._predict_network,
                widgets.HBox([self._run]),
                self._message,
                self._offer,
                self._result,
                self._score,
            ]
        )
        self.add_class("pbl-drill")
        self.add_class("pbl-keys")  # keys pressed in it stay with it (see _announce.py)
        self._preview()

    # ------------------------------------------------------------------ state

    @property
    def settings(self) -> DrillSettings:
        return DrillSettings(
            int(self._host_port.value), int(self._container_port.value), self._bind.value, self._publish.value
        )

    @property
    def result(self) -> DrillResult | None:
        """The last run's result."""
        return self._results[-1] if self._results else None

    @property
    def results(self) -> tuple[DrillResult, ...]:
        return tuple(self._results)

    def __repr__(self) -> str:  # the text/plain fallback where widgets cannot render
        return f"ConceptDrill(runs={len(self._results)})"

    # ------------------------------------------------------------------ actions

    def run(
        self,
        *,
        host_port: int | None = None,
        container_port: int | None = None,
        bind: Address | None = None,
        publish_ip: Address | None = None,
        predict: bool | None = None,
        predict_network: bool | None = None,
    ) -> DrillResult:
        """Set any of the choices given, then run the drill once (the container is removed after)."""
        if host_port is not None:
            self._host_port.value = validate_port(host_port, what="host port")
        for control, value in (
            (self._container_port, container_port),
            (self._bind, bind),
            (self._publish, publish_ip),
            (self._predict, predict),
            (self._predict_network, predict_network),
        ):
            if value is not None:
                control.value = value
        return self._worker.call(self._run_job, label="Running the drill")

    # ------------------------------------------------------------------ handlers and jobs

    def _on_run_click(self, _: widgets.Button) -> None:
        self._worker.submit(self._run_job, label="Running the drill")

    def _on_setting_value(self, _: dict[str, Any]) -> None:
        self._preview()

    def _run_job(self) -> DrillResult:
        if self._predict.value is None:
            raise PortBindingError(
                "Make your prediction first: will it be reachable from this machine?",
                hint="choose yes or no under 'Reachable from THIS machine?', then run",
            )
        settings = self.settings
        predicted_local = bool(self._predict.value)
        predicted_network = None if self._predict_network.value is None else bool(self._predict_network.value)
        self._offer.clear()
        engine = self.engine
        spec = settings.spec()
        self._message.busy(f"Starting: {spec.to_cli()}")
        try:
            container = engine.run(spec)
        except (ImageMissing, PortInUse) as error:
            raise self._offer_repair(error, spec, self._rerun) from error
        try:
            self._message.busy("Waiting for Jupyter to open its socket inside the container…")
            settled = _live.wait_listening(engine, container, timeout=self._wait)
            if settled.running and not settled.listening:
                raise PortBindingError(
                    f"Jupyter did not open its socket within {self._wait:g} s.",
                    hint="run the drill again; if it keeps happening, run `portbinding doctor`",
                )
            self._message.busy("Probing from this machine and from the network…")
            local = probe_http(
                f"http://{bracket_host(engine.publish_host)}:{settings.host_port}/api", timeout=2.0
            )
            address = _live.lan_address() if engine.publish_host in ("127.0.0.1", "localhost") else None
            network = (
                probe_http(f"http://{address}:{settings.host_port}/api", timeout=2.0) if address else None
            )
            found = diagnose(
                engine, container, container_port=settings.container_port, expect="jupyter", path="/api"
            )
        finally:
            engine.remove(container)
        result = DrillResult(
            settings,
            spec.to_cli(),
            predicted_local,
            predicted_network,
            local,
            network,
            address,
            found.cause,
            tuple(settings.reasons()),
        )
        self._results.append(result)
        self._result.value = _result_html(result)
        right = sum(1 for item in self._results if item.correct)
        self._score.value = f"<small>Predictions right so far: <b>{right} / {len(self._results)}</b></small>"
        if result.correct:
            self._message.ok("Your prediction was right. The container has been removed.")
        else:
            self._message.info(
                "Reality disagreed with your prediction — read why below. The container has been removed."
            )
        return result

    def _rerun(self, spec: RunSpec) -> DrillResult:
        """Run the drill again after a repair, on the host port of the repaired spec."""
        port = next((m.host_port for m in spec.publish if m.host_port), None)
        if port is not None:
            self._host_port.value = port
        return self._run_job()

    def _preview(self) -> None:
        try:
            cli = self.settings.spec().to_cli()
        except PortBindingError as error:
            self._cli.value = f"<small>{esc(error.message)}</small>"
            return
        self._cli.value = f"<small>This runs:</small> {code(cli)}"


def _answered(result: ProbeResult) -> bool:
    return result.ok and is_jupyter(result)


def _said(prediction: bool | None) -> str:
    return "no prediction" if prediction is None else ("reachable" if prediction else "unreachable")


def _result_html(result: DrillResult) -> str:
    rows = [
        [
            esc("this machine"),
            esc(_said(result.predicted_local)),
            badge(result.reachable_local, yes="reachable", no=f"unreachable ({result.local.outcome})"),
            badge(result.predicted_local == result.reachable_local, yes="✔ right", no="✖ wrong"),
        ]
    ]
    if result.network is not None:
        predicted = result.predicted_network
        rows.append(
            [
                esc(
                    f"the network side (this host's own address {result.network_address}, "
                    "as another machine would use it)"
                ),
                esc(_said(predicted)),
                badge(
                    result.reachable_network, yes="reachable", no=f"unreachable ({result.network.outcome})"
                ),
                badge(
                    None if predicted is None else predicted == result.reachable_network,
                    yes="✔ right",
                    no="✖ wrong",
                    unknown="—",
                ),
            ]
        )
    why = "".join(f"<li>{esc(reason)}</li>" for reason in result.reasons)
    return (
        f'<div class="pbl-drill-outcome" data-correct="{str(result.correct).lower()}" style="{LINE_HEIGHT}">'
        f"<div>Ran {code(result.cli)}</div>"
        + table(["from", "you predicted", "reality", ""], rows)
        + f"<div>Diagnosis: <code>{esc(result.cause)}</code></div><b>Why:</b><ul>{why}</ul></div>"
    )
