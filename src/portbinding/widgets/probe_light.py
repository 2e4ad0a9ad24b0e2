"""ProbeLight: one HTTP probe from this machine, shown as a traffic light, and a diagnosis.

Green: the service answered. Amber: the container runs but nothing listens inside yet (still
starting). Red: unreachable -- reset, empty reply, refused, timeout, or the wrong service.
Diagnose reads the evidence layer by layer and shows the cause, the key evidence and the exact
fix; when the light follows a ContainerConsole, one click puts that fix into the console.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, TypeAlias

import ipywidgets as widgets
from docker.models.containers import Container

from portbinding.builder import has_image
from portbinding.diagnose import LAYER_QUESTION, LAYER_TITLE, LAYERS, Cause, Diagnosis, Expect, diagnose
from portbinding.engine import Engine
from portbinding.errors import ContainerNotFound, ImageMissing, PortBindingError
from portbinding.probe import Outcome, ProbeResult
from portbinding.widgets import _live
from portbinding.widgets._base import FixOffer, WorkerBacked
from portbinding.widgets._ui import (
    AMBER,
    GREEN,
    GREY,
    LINE_HEIGHT,
    RED,
    MessageArea,
    button,
    code,
    esc,
    table,
)
from portbinding.widgets._worker import Worker
from portbinding.widgets.session import watch_removals

if TYPE_CHECKING:
    from portbinding.widgets.console import ContainerConsole, RunTarget

Light: TypeAlias = Literal["off", "green", "amber", "red"]

_LIGHT_COLOUR: dict[Light, str] = {"off": GREY, "green": GREEN, "amber": AMBER, "red": RED}
_LIGHT_WORD: dict[Light, str] = {
    "off": "Not probed yet",
    "green": "Reachable",
    "amber": "Starting",
    "red": "Unreachable",
}

# Why, at the network layer, and what to do next: one entry per cause the diagnosis can find.
CAUSE_HINTS: dict[Cause, str] = {
    "ok": "Every layer holds: the host port is published, the engine forwards it to the container, and "
    "the server listens on an address that forwarded traffic can reach.",
    "loopback_only": "127.0.0.1 inside a container is the container's OWN loopback, not your machine's. "
    "Published traffic is forwarded to the container's network interface (eth0, {ip}), and nothing "
    "listens there. Make the server listen on every interface (0.0.0.0), with the run flag or in its "
    "config.",
    "wrong_container_port": "-p HOST:CONTAINER forwards the host port to the CONTAINER port on the right. "
    "Nothing listens on that port inside, so the forwarded connection is refused there. Put the port the "
    "app really listens on to the right of the colon.",
    "not_published": "The server listens inside, but no host port leads to it: EXPOSE only documents a "
    "port. Publish it with -p HOST:CONTAINER.",
    "crashed": "The container is not running, and a published port lives only while its container runs. "
    "The reason it stopped is in its logs.",
    "still_starting": "The container runs, but the server has not opened its socket yet. Wait for it to "
    "answer (poll) instead of sleeping a guessed time.",
    "wrong_service": "Something answers on the published port, but it is not your service: another "
    "process holds that port inside the container.",
    "port_retried": "Jupyter found its port taken inside the container and moved to the next one, while "
    "-p still points at the old port.",
    "crash_loop": "A restart policy (--restart) starts the crashed app again and again, so the container "
    "looks up for a second at a time. The reason it crashes is in its logs.",
    "stopped": "Nothing failed: the container was stopped (docker stop sends SIGTERM, then SIGKILL) or never "
    "started. Start it again.",
    "host_network": "With --network host the container uses your machine's network directly: there is no "
    "mapping, so -p HOST:CONTAINER is ignored and the server is at its own port on your machine.",
    "unusable_host_address": "-p ADDRESS:HOST:CONTAINER publishes on one address of the engine's machine "
    "only. From here that address cannot be reached (a remote machine's 127.0.0.1 is not yours).",
    "wrong_address": "The server listens on one specific address inside the container. Published traffic is "
    "forwarded to the container's address on its first network ({ip}), where nothing listens.",
    "ipv6_only": "The server listens on IPv6 only; the engine forwards published traffic to the container's "
    "IPv4 address ({ip}). Listen on 0.0.0.0, or on :: dual-stack.",
    "peer_localhost": "Every container has its own localhost. From one container, reach another by its name "
    "on a shared user-defined network, not at localhost.",
    "not_same_network": "Containers reach each other only across a network they share, and names resolve "
    "only on user-defined networks: docker network connect puts them on one.",
    "name_unresolved": "On a user-defined network a container answers to its name and its aliases (a Compose "
    "service name): the name in use is neither.",
    "upstream_down": "A 502 from a proxy is the new reset: the proxy itself is fine, the service behind it "
    "is down or unreachable from the proxy. Its log names the upstream; diagnose that one from the proxy.",
}


class ProbeLight(WorkerBacked, widgets.VBox):  # type: ignore[misc]
    """Probe a container's published port from this machine and show the outcome as a light."""

    def __init__(
        self,
        container: Container | None = None,
        container_port: int = 8888,
        *,
        path: str = "/api",
        expect: Expect = "jupyter",
        engine: Engine | None = None,
        timeout: float = 2.0,
    ) -> None:
        self._container: Container | None = container
        self._port = container_port
        self._path = path
        self._expect: Expect = expect
        self._given_engine = engine
        self._timeout = timeout
        self._result: ProbeResult | None = None
        self._light: Light = "off"
        self._diagnosis: Diagnosis | None = None
        self._console: ContainerConsole | None = None
        self._gone = ""  # why there is no container any more ("" while there is one, or never was)
        self._gone_name = ""  # the container that went

        self._title = widgets.HTML("<b>Probe light</b> — can your machine reach the server in the container?")
        self._lamp = widgets.HTML()
        self._lamp.add_class("pbl-lamp")
        self._target = widgets.HTML()
        self._target.add_class("pbl-probe-target")
        self._probe = button(
            "Probe",
            css_class="pbl-probe",
            style="primary",
            icon="signal",
            tooltip="One HTTP GET from this machine to the published port",
        )
        self._diagnose = button(
            "Diagnose",
            css_class="pbl-diagnose",
            icon="stethoscope",
            tooltip="Read the evidence layer by layer and find the cause",
        )
        self._apply = button(
            "Put the fix in the console",
            css_class="pbl-apply-fix",
            icon="wrench",
            tooltip="Copy the diagnosis' fixed run line into the console's run line",
        )
        self._apply.layout.display = "none"  # shown once the light follows a console
        self._message = MessageArea()
        self._hint = widgets.HTML()
        self._hint.add_class("pbl-hint")
        self._report = widgets.HTML()
        self._report.add_class("pbl-diagnosis")

        self._worker = Worker(
            self._message,
            buttons=[self._probe, self._diagnose, self._apply],
            on_idle=self._sync_buttons,
            name="portbinding-probe-light",
        )
        self._offer = FixOffer(self._worker)
        self._probe.on_click(self._on_probe_click)
        self._diagnose.on_click(self._on_diagnose_click)
        self._apply.on_click(self._on_apply_click)
        super().__init__(children=[
            self._title, self._lamp, self._target,
            widgets.HBox([self._probe, self._diagnose, self._apply]),
            self._message, self._offer, self._hint, self._report,
        ])  # fmt: skip
        self.add_class("pbl-probe-light")
        self.add_class("pbl-keys")  # keys pressed in it stay with it (see _announce.py)
        watch_removals(self._on_removed)
        self._render()

    # ------------------------------------------------------------------ state

    @property
    def outcome(self) -> Outcome | None:
        """The last probe's outcome (None before the first probe, or after attach)."""
        return self._result.outcome if self._result else None

    @property
    def light(self) -> Light:
        """off / green / amber / red."""
        return self._light

    @property
    def result(self) -> ProbeResult | None:
        return self._result

    @property
    def last_diagnosis(self) -> Diagnosis | None:
        return self._diagnosis

    @property
    def container(self) -> Container | None:
        return self._container

    @property
    def container_port(self) -> int:
        return self._port

    def __repr__(self) -> str:  # the text/plain fallback where widgets cannot render
        return f"ProbeLight(light={self._light!r}, outcome={self.outcome!r})"

    # ------------------------------------------------------------------ public actions

    def attach(
        self,
        container: Container | None,
        container_port: int | None = None,
        *,
        path: str | None = None,
        expect: Expect | None = None,
    ) -> None:
        """Point the light at ``container``'s ``container_port``; the light goes off until the next probe."""
        self._container = container
        self._gone = self._gone_name = ""
        self._port = container_port if container_port is not None else self._port
        self._path = path if path is not None else self._path
        self._expect = expect if expect is not None else self._expect
        self._result, self._light, self._diagnosis = None, "off", None
        self._report.value = ""
        self._hint.value = ""
        self._message.clear()
        self._render()
        self._sync_buttons()

    def follow(self, console: ContainerConsole) -> None:
        """Attach to whatever ``console`` runs from now on; enables "Put the fix in the console"."""
        self._console = console
        console.observe_runs(self._on_console_run)
        self._apply.layout.display = None
        target = console.target
        if target is not None:
            self._on_console_run(target)
        self._sync_buttons()

    def probe(self) -> ProbeResult:
        """One HTTP probe of the published port from this machine; updates the light."""
        return self._worker.call(self._probe_job, label="Probing from your machine")

    def diagnose(self) -> Diagnosis:
        """Find the cause from the evidence of every layer, and show it with the fix."""
        return self._worker.call(self._diagnose_job, label="Diagnosing (state, ports, listeners inside)")

    def apply_fix(self) -> str:
        """Put the diagnosis' fixed run line into the followed console; returns that line."""
        return self._worker.call(self._apply_job, label="Copying the fix")

    # ------------------------------------------------------------------ handlers

    def _on_probe_click(self, _: widgets.Button) -> None:
        self._worker.submit(self._probe_job, label="Probing from your machine")

    def _on_diagnose_click(self, _: widgets.Button) -> None:
        self._worker.submit(self._diagnose_job, label="Diagnosing (state, ports, listeners inside)")

    def _on_apply_click(self, _: widgets.Button) -> None:
        self._worker.submit(self._apply_job, label="Copying the fix")

    def _on_console_run(self, target: RunTarget | None) -> None:
        if target is None:
            if self._container is not None:
                self._show_gone(str(self._container.name), "from the console")
            return
        self.attach(
            target.container, target.container_port or self._port, path=target.path, expect=target.expect
        )

    def _on_removed(self, names: frozenset[str], how: str) -> None:
        # A followed console hears of an end_lesson() first and tells the light "from the console":
        # the light then says who really removed it.
        name = str(self._container.name) if self._container is not None else self._gone_name
        if name and name in names:
            self._show_gone(name, how)

    def _show_gone(self, name: str, how: str) -> None:
        """The container is gone: no light, no stale outcome -- say so, and what to do next."""
        self.attach(None)
        self._gone, self._gone_name = f"{name} was removed {how}".rstrip() + ".", name
        self._render()
        self._message.announce(f"Probe light: {self._gone} Nothing to probe.")

    def _diagnose_now(self, container: Container) -> Diagnosis:
        try:
            return diagnose(
                self.engine, container, container_port=self._port, expect=self._expect, path=self._path
            )
        except ContainerNotFound:
            self._show_gone(str(container.name), "(it is not there any more: docker rm, or --rm)")
            raise

    # ------------------------------------------------------------------ jobs

    def _probe_job(self) -> ProbeResult:
        container = self._require_container()
        # The light reads the diagnosis: green when it says ok, amber while nothing listens
        # yet, red for any cause -- never a second opinion drawn from the symptom alone.
        found = self._diagnose_now(container)
        ev = found.evidence
        if ev.host is not None:
            result = ev.host.result
        else:
            where = (
                "the container is not running, so its ports are closed"
                if not ev.running
                else f"container port {self._port} is not published, so no host port leads to it"
            )
            result = ProbeResult("refused", where, 0.0, target=f"container port {self._port}")
        light: Light = (
            "green" if found.cause == "ok" else "amber" if found.cause == "still_starting" else "red"
        )
        self._result, self._light = result, light
        self._render()
        hint = self._probe_hint(result, light, found)
        self._hint.value = _hint_html(hint)
        self._message.clear()
        status = f" (HTTP {result.http_status})" if result.http_status else ""
        self._message.announce(f"Probe: {_LIGHT_WORD[light]}, {result.outcome}{status}. {hint}")
        return result

    def _diagnose_job(self) -> Diagnosis:
        container = self._require_container()
        found = self._diagnose_now(container)
        self._diagnosis = found
        ip = _live.container_ip(container.attrs) or "its own address"
        self._report.value = _diagnosis_html(found, hint=CAUSE_HINTS[found.cause].format(ip=ip))
        self._message.clear()
        fix = found.fix.run_line
        self._message.announce(
            f"Diagnosis: {found.cause}. {found.summary} Fix: {found.fix.summary}"
            + (f" The fixed line: {fix}" if fix else "")
        )
        return found

    def _apply_job(self) -> str:
        if self._console is None:
            raise PortBindingError(
                "This probe light does not follow a console.",
                hint="call light.follow(console) first, or run the fix line yourself",
            )
        if self._diagnosis is None or self._diagnosis.fix.run is None:
            raise PortBindingError(
                "There is no fixed run line to copy yet.",
                hint="click Diagnose first; some causes are fixed in the app, not the run line",
            )
        self._offer.clear()
        fix = self._diagnosis.fix.run
        line = fix.to_cli()
        self._console.line = line
        if not has_image(self.engine.client, fix.image):
            missing = ImageMissing(f"The fixed run line needs the image {fix.image}, which is not built yet.")
            raise self._offer_repair(missing, fix, lambda _: self._apply_job()) from None
        self._message.ok("The fixed run line is in the console now: click Run there, then Probe again here.")
        return line

    # ------------------------------------------------------------------ views

    def _require_container(self) -> Container:
        if self._container is None:
            raise PortBindingError(
                "There is no container to probe yet.",
                hint="start one first (the console's Run button, or console.run_scenario(...)), "
                "then attach it: light.attach(container, 8888)",
            )
        return self._container

    def _sync_buttons(self) -> None:
        nothing = self._container is None
        self._probe.disabled = nothing
        self._diagnose.disabled = nothing
        fix = self._diagnosis.fix.run if self._diagnosis else None
        self._apply.disabled = self._console is None or fix is None

    def _probe_hint(self, result: ProbeResult, light: Light, found: Diagnosis) -> str:
        host = result.target or f"container port {self._port}"
        if light == "green":
            return f"{host} answers: every hop from your machine to the server holds."
        if light == "amber":
            return (
                "The container runs, but nothing answers on the port yet: the server is still starting. "
                "Probe again in a moment."
            )
        # A first, graduated hint: which rung breaks, as a question; the cause comes with Diagnose.
        layer = found.broken_layer or "host"
        number = LAYERS.index(layer) + 1
        return (
            f"The probe got: {result.outcome}. The first rung that does not hold is rung {number}, "
            f"{LAYER_TITLE[layer]}: {LAYER_QUESTION[layer]} Click Diagnose for the evidence."
        )

    def _render(self) -> None:
        colour, word = _LIGHT_COLOUR[self._light], _LIGHT_WORD[self._light]
        result = self._result
        outcome = result.outcome if result else ""
        detail = result.detail if result else "Click Probe (or call light.probe()) to try the published port."
        if self._gone:
            word = "No container"
            detail = f"{self._gone} There is nothing to probe: run a container, then probe again."
        status = f" (HTTP {result.http_status})" if result and result.http_status else ""
        self._lamp.value = (
            f'<div class="pbl-light pbl-light-{self._light}" data-light="{self._light}" '
            f'data-outcome="{esc(outcome)}" '
            'style="display:flex;align-items:center;gap:12px;margin:4px 0">'
            f'<svg width="34" height="34" style="flex:none" role="img" aria-label="{esc(word)}">'
            '<circle cx="17" cy="17" r="14" '
            f'fill="{colour}" stroke="#555" stroke-width="1.5"/></svg>'
            f'<div style="{LINE_HEIGHT}"><b class="pbl-light-word">{esc(word)}</b>'
            + (f' — <code class="pbl-outcome">{esc(outcome)}</code>{esc(status)}' if outcome else "")
            + f'<br><small class="pbl-detail">{esc(detail)}</small></div></div>'
        )
        if self._container is None:
            # After a removal the lamp already says what happened: "yet" would contradict it.
            attached = "No container attached." if self._gone else "No container attached yet."
            self._target.value = f"<small>{attached}</small>"
        else:
            self._target.value = (
                f"<small>Probes container <b>{esc(self._container.name)}</b>, container port {self._port}, "
                f"path {code(self._path)}, expecting {esc(self._expect)}.</small>"
            )


def _hint_html(text: str) -> str:
    return (
        f'<div class="pbl-hint-text" style="margin:2px 0 4px 0;{LINE_HEIGHT}"><b>Hint:</b> {esc(text)}</div>'
    )


def _diagnosis_html(found: Diagnosis, *, hint: str) -> str:
    ev = found.evidence
    colour = GREEN if found.cause == "ok" else RED
    inside = "; ".join(f"{where} → {reply or '(no reply)'}" for where, reply in ev.inside.items())
    host = ev.host_probe or {}
    rows: list[list[str]] = [
        ["state", esc(ev.status + (f" (exit code {ev.exit_code})" if ev.exit_code else ""))],
        ["published", esc(", ".join(ev.published) or "nothing")],
        [
            "listening inside",
            esc(", ".join(ev.listeners) or ("nothing yet" if ev.status == "running" else "—")),
        ],
        ["answers inside", esc(inside or "—")],
        ["from your machine", esc(f"{host.get('outcome')}: {host.get('detail')}" if host else "not probed")],
    ]
    if ev.status != "running" and ev.log_tail:
        rows.append(["last log lines", f"<code>{esc(chr(10).join(ev.log_tail[-4:]))}</code>"])
    commands = "".join(
        f"<li>{esc(item.what)}: <code>{esc(item.command)}</code></li>"
        for rung in found.rungs()
        for item in rung.observations
    )
    looked = {
        "procfs": " (looked inside from this machine's /proc)",
        "helper": " (looked inside with a helper container)",
    }
    fix = found.fix
    fix_parts = [
        '<details class="pbl-see-yourself"><summary>See it yourself'
        f"{esc(looked.get(ev.look, ''))}</summary><ul>{commands}</ul></details>",
        f"<div><b>Fix:</b> {esc(fix.summary)}</div>",
    ]
    if fix.run_line is not None:
        fix_parts.append(f'<div>run: <code class="pbl-fix-run">{esc(fix.run_line)}</code></div>')
    extra = [command for command in fix.commands if command != fix.run_line]
    if extra:
        fix_parts.append(f"<div>commands: <code>{esc(' && '.join(extra))}</code></div>")
    if fix.config_change:
        fix_parts.append(f'<div>config: <code class="pbl-fix-config">{esc(fix.config_change)}</code></div>')
    return (
        f'<div class="pbl-diagnosis-body" data-cause="{esc(found.cause)}" '
        f'style="border-left:4px solid {colour};'
        f'padding:4px 8px;margin:4px 0;{LINE_HEIGHT}">'
        f'<div><b>Cause:</b> <code class="pbl-cause">{esc(found.cause)}</code> — {esc(found.summary)}</div>'
        + table(["evidence", ""], rows, css_class="pbl-evidence")
        + "".join(fix_parts)
        + _hint_html(hint)
        + "</div>"
    )
