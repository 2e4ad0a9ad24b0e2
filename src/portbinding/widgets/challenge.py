"""ChallengeWidget: a broken container to diagnose rung by rung, commit to a cause, and fix.

Drop it into a lesson cell -- ``ChallengeWidget(seed=7, causes=["loopback_only", "not_published"])``
-- and the learner gets: the task (a URL to make reachable, the container meant to serve it,
what a GET there says now); five rung buttons, each running the real command's equivalent and
showing the command; a commit form (failing rung + cause), recorded before anything is
revealed; graduated hints from the live diagnosis; a command box for the fix (or any terminal:
the live check sees a fix however it is made); and End, which removes what the challenge
started. The verdict and each hint are announced to screen readers (live regions) and say in
words what the colour says. Every control is a native button, select or text box, reachable
with Tab in reading order.

Engine work runs on the widget's one worker thread; the live check runs on a watcher thread
that only probes the URL and sets widget state (never ``print``: ipykernel drops thread output).
Every step is also a method (``start``, ``look``, ``commit``, ``hint``, ``run``, ``end``) for
cells and tests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from portbinding.challenge.commands import SUPPORTED, run_commands
from portbinding.challenge.core import Challenge, Check, Ending
from portbinding.challenge.hints import Hint
from portbinding.challenge.ladder import CAUSE_WORDS, CHALLENGE_CAUSES, RUNGS, Layer, cause_words
from portbinding.challenge.rungs import RungView
from portbinding.engine import Engine
from portbinding.errors import PortBindingError
from portbinding.widgets._base import WorkerBacked
from portbinding.widgets._ui import MessageArea, button, esc, pre
from portbinding.widgets._worker import Worker

LOGGER = logging.getLogger(__name__)

WATCH_SLICE_S = 300.0  # the watcher re-arms itself after each slice until solved or ended


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{int(seconds // 60)} min {int(seconds % 60)} s"


class ChallengeWidget(WorkerBacked, widgets.VBox):  # type: ignore[misc]
    """Diagnose and fix a broken container drawn from a seed (see the module docstring)."""

    def __init__(
        self,
        *,
        seed: int | None = None,
        causes: Collection[str] | None = None,
        image: str | None = None,
        engine: Engine | None = None,
        folder: Path | None = None,
        startup_delay: int | None = None,
    ) -> None:
        for cause in causes or ():
            if cause not in CHALLENGE_CAUSES:
                raise PortBindingError(
                    f"There is no challenge cause called {cause!r}.",
                    hint=f"choose from: {', '.join(CHALLENGE_CAUSES)}",
                )
        self._given_engine = engine
        self._options: dict[str, Any] = {
            "seed": seed,
            "cause": list(causes) if causes else None,
            "image": image,
            "startup_delay": startup_delay,
            "folder": folder,
        }
        self._challenge: Challenge | None = None
        self._stop_watch = threading.Event()
        self._watcher: threading.Thread | None = None
        self._hints: list[Hint] = []
        self._shown_verdict = ""
        self._shown_solved = False
        self._rung_text = ""

        self._task = widgets.HTML(
            "<b>Challenge</b> — press <i>Start the challenge</i> to get a broken container."
        )
        self._task.add_class("pbl-challenge-task")
        self._verdict = widgets.HTML()
        self._verdict.add_class("pbl-challenge-verdict")
        self._start = button(
            "Start the challenge", css_class="pbl-challenge-start", style="primary", icon="play"
        )
        self._rung_buttons = {
            rung.layer: button(
                f"{rung.number} {rung.title}", css_class=f"pbl-rung-{rung.layer}", tooltip=rung.question
            )
            for rung in RUNGS
        }
        self._rung_view = widgets.HTML()
        self._rung_view.add_class("pbl-rung-view")
        self._layer = widgets.Dropdown(
            options=[("— the failing rung —", None)] + [(f"{r.number} {r.title}", r.layer) for r in RUNGS],
            value=None,
            description="Failing rung",
            style={"description_width": "initial"},
        )
        self._layer.index = 0  # shown as "— the failing rung —", not blank (value stays None)
        self._cause = widgets.Dropdown(
            options=[("— the cause —", None)] + [(words, cause) for cause, words in CAUSE_WORDS.items()],
            value=None,
            description="Cause",
            layout=widgets.Layout(width="auto", min_width="460px"),
        )
        self._cause.index = 0
        self._call = widgets.HTML()  # the choice as the kernel has it, in words, before Commit
        self._call.add_class("pbl-challenge-call")
        self._commit = button(
            "Commit",
            css_class="pbl-challenge-commit",
            icon="check",
            tooltip="Record your call before any hint: the rung and the cause",
        )
        self._hint = button(
            "Hint",
            css_class="pbl-challenge-hint",
            icon="lightbulb-o",
            tooltip="One hint at a time: 1 the rung, 2 its evidence, 3 the fix",
        )
        self._hint_view = widgets.HTML()
        self._hint_view.add_class("pbl-challenge-hints")
        self._line = widgets.Text(
            placeholder="docker rm -f NAME && docker run -d -p ...",
            description="Command",
            layout=widgets.Layout(width="98%"),
        )
        self._line.add_class("pbl-challenge-line")
        self._run = button("Run", css_class="pbl-challenge-run", icon="terminal", tooltip=f"Runs {SUPPORTED}")
        self._run_view = widgets.HTML()
        self._end = button(
            "End challenge",
            css_class="pbl-challenge-end",
            icon="trash",
            tooltip="Remove what the challenge started (your own containers stay)",
        )
        self._message = MessageArea()
        steps = [*self._rung_buttons.values(), self._commit, self._hint, self._run, self._end]
        self._worker = Worker(
            self._message,
            # Not Start: the worker re-enables its buttons when a job ends, before on_idle disables
            # what makes no sense; Start would flash pressable after every step. It is disabled
            # when pressed, and only _sync_buttons enables it.
            buttons=steps,
            on_idle=self._sync_buttons,
            name="portbinding-challenge",
        )

        self._start.on_click(self._on_start_click)
        for layer, item in self._rung_buttons.items():
            item.on_click(
                lambda _, layer=layer: self._worker.submit(lambda: self._look_job(layer), label="Looking")
            )
        self._layer.observe(self._on_choice_value, names="value")
        self._cause.observe(self._on_choice_value, names="value")
        self._commit.on_click(self._on_commit_click)
        self._hint.on_click(self._on_hint_click)
        self._run.on_click(self._on_run_click)
        self._end.on_click(self._on_end_click)

        super().__init__(
            children=[
                self._task,
                self._start,
                self._verdict,
                widgets.HTML("<b>Climb the ladder</b> — each rung runs its command:"),
                widgets.HBox(list(self._rung_buttons.values()), layout=widgets.Layout(flex_flow="row wrap")),
                self._rung_view,
                widgets.HTML("<b>Commit</b> — your call, recorded before any hint:"),
                widgets.HBox(
                    [self._layer, self._cause, self._commit], layout=widgets.Layout(flex_flow="row wrap")
                ),
                self._call,
                self._hint,
                self._hint_view,
                widgets.HTML(
                    f"<b>Fix it</b> — any way you like: a terminal, or this box ({esc(SUPPORTED)}):"
                ),
                widgets.HBox([self._line, self._run]),
                self._run_view,
                self._end,
                self._message,
            ]
        )
        self.add_class("pbl-challenge")
        self.add_class("pbl-keys")  # keys pressed in it stay with it (see _announce.py)
        self._sync_buttons()

    # ------------------------------------------------------------------ public state

    @property
    def challenge(self) -> Challenge:
        """The running challenge (a clear error before Start)."""
        if self._challenge is None:
            raise PortBindingError("The challenge has not started yet.", hint="press “Start the challenge”")
        return self._challenge

    @property
    def solved(self) -> bool:
        return self._challenge is not None and self._challenge.attempt.solved_at is not None

    @property
    def verdict(self) -> str:
        """The verdict as plain text."""
        return self._shown_verdict

    @property
    def hints_given(self) -> list[Hint]:
        return list(self._hints)

    @property
    def rung_text(self) -> str:
        """What the last rung looked at showed, as plain text."""
        return self._rung_text

    def __repr__(self) -> str:  # the text/plain fallback where widgets cannot render
        return f"ChallengeWidget({self._challenge.id if self._challenge else 'not started'}): {self.verdict}"

    # ------------------------------------------------------------------ public steps (cells, tests)

    def start(self) -> dict[str, Any]:
        """Start the challenge (a few seconds); returns what the learner is told."""
        self._start.disabled = True
        return self._worker.call(self._start_job, label="Starting the challenge")

    def look(self, layer: Layer) -> RungView:
        return self._worker.call(lambda: self._look_job(layer), label="Looking")

    def commit(self, layer: Layer, cause: str) -> dict[str, Any]:
        self._layer.value, self._cause.value = layer, cause
        return self._worker.call(self._commit_job, label="Committing")

    def hint(self) -> Hint:
        return self._worker.call(self._hint_job, label="Diagnosing for a hint")

    def run(self, line: str) -> str:
        self._line.value = line
        return self._worker.call(self._run_job, label="Running")

    def wait_solved(self, timeout: float) -> bool:
        """Block until the live check turns solved and says so (True), or ``timeout`` seconds pass.

        The attempt is marked solved a moment before the watcher thread shows it: waiting for the
        record alone could read the verdict still saying "not solved yet".
        """
        from portbinding.probe import wait_until

        def shown() -> bool:
            return self.solved and self._shown_solved

        return wait_until(shown, timeout=timeout, first_interval=0.05, max_interval=0.2)

    def end(self, *, remove_mine: bool = False) -> Ending:
        return self._worker.call(lambda: self._end_job(remove_mine), label="Ending the challenge")

    # ------------------------------------------------------------------ handlers

    def _on_start_click(self, _: widgets.Button) -> None:
        self._start.disabled = True
        self._worker.submit(self._start_job, label="Starting the challenge")

    def _on_choice_value(self, _: dict[str, Any]) -> None:
        layer, cause = self._layer.value, self._cause.value
        if layer is None and cause is None:
            self._call.value = ""
            return
        rung = self._layer.label if layer is not None else "(choose the failing rung)"
        words = cause_words(str(cause)) if cause is not None else "(choose the cause)"
        self._call.value = f"<small>Your call: rung {esc(rung)} — {esc(words)}.</small>"

    def _on_commit_click(self, _: widgets.Button) -> None:
        self._worker.submit(self._commit_job, label="Committing")

    def _on_hint_click(self, _: widgets.Button) -> None:
        self._worker.submit(self._hint_job, label="Diagnosing for a hint")

    def _on_run_click(self, _: widgets.Button) -> None:
        self._worker.submit(self._run_job, label="Running")

    def _on_end_click(self, _: widgets.Button) -> None:
        self._worker.submit(lambda: self._end_job(False), label="Ending the challenge")

    # ------------------------------------------------------------------ jobs (the worker thread)

    def _start_job(self) -> dict[str, Any]:
        if self._challenge is not None and not self._challenge.ended:
            raise PortBindingError("This challenge is running already.", hint="end it first to draw another")
        options = dict(self._options)
        self._message.busy("Starting a broken container (a few seconds; a Jupyter takes about three)…")
        self._challenge = Challenge.new(self.engine, **options)
        self._hints = []
        told = self._challenge.told
        self._task.value = (
            f"<b>Challenge {esc(told['id'])}</b><br>Make <b>{esc(told['service'])}</b> answer at "
            f"<code>{esc(told['url'])}</code> ({esc(told['expects'])}).<br>The container meant to serve it: "
            f"<code>{esc(told['container'])}</code>.<br>Right now a GET there says:{pre(told['observed'])}"
            "Climb the ladder, commit to the failing rung and a cause, then fix it any way you like."
        )
        self._hint_view.value = self._rung_view.value = self._run_view.value = ""
        self._set_verdict("✗ Not solved yet: checking the URL…", solved=False)
        self._start_watcher()
        self._message.ok(f"Challenge {told['id']} started.")
        return told

    def _look_job(self, layer: Layer) -> RungView:
        view = self.challenge.look(layer, via="widget")
        self._rung_text = view.text()
        self._rung_view.value = f"<b>{esc(view.title)}</b>{pre(view.text())}"
        return view

    def _commit_job(self) -> dict[str, Any]:
        if self._layer.value is None or self._cause.value is None:
            raise PortBindingError(
                "Choose the failing rung and the cause first.", hint="both lists, then Commit"
            )
        result = self.challenge.commit(str(self._layer.value), str(self._cause.value), via="widget")
        self._message.ok("Committed. Hints are open now; the live check will tell you when it answers.")
        return result

    def _hint_job(self) -> Hint:
        given = self.challenge.hint(via="widget")
        self._hints.append(given)
        body = "".join(f"<p><b>Hint {h.number} of 3</b></p>{pre(h.text)}" for h in self._hints)
        self._hint_view.value = body
        if given.line:
            self._line.value = given.line  # ready to run, or to copy into a terminal
        # The gist only: a terminal's worth of output read aloud helps nobody; it is on the page.
        gist = given.text.split("\n\n", 1)[0]
        more = " The commands and what they show are under the Hint button." if given.number == 2 else ""
        line = f" The line to run is in the Command box: {given.line}" if given.line else ""
        self._message.announce(f"Hint {given.number} of 3. {gist}{more}{line}")
        return given

    def _run_job(self) -> str:
        output = run_commands(self.challenge, str(self._line.value))
        self._run_view.value = f"{pre('$ ' + str(self._line.value))}{pre(output or '(no output)')}"
        return output

    def _end_job(self, remove_mine: bool) -> Ending:
        self._stop_watch.set()
        ending = self.challenge.end(remove_mine=remove_mine, via="widget")
        record = ending.record
        words = "solved" if record["solved"] else "not solved"
        self._message.ok(
            f"Ended ({words}). Removed: {', '.join(ending.removed) or 'nothing'}."
            + (f" {ending.advice}" if ending.advice else "")
        )
        return ending

    # ------------------------------------------------------------------ the live check (its own thread)

    def _start_watcher(self) -> None:
        self._stop_watch.set()
        self._stop_watch = threading.Event()
        stop, challenge = self._stop_watch, self.challenge
        self._watcher = threading.Thread(
            target=self._watch_loop, args=(challenge, stop), daemon=True, name="portbinding-challenge-watch"
        )
        self._watcher.start()

    def _watch_loop(self, challenge: Challenge, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                check = challenge.watch(
                    timeout=WATCH_SLICE_S, stop=stop, on_check=self._show_verdict, via="watcher"
                )
                if check.solved:
                    return
        except Exception:  # the check only probes; anything else is a bug, shown, never a traceback
            LOGGER.exception("the live check of challenge %s stopped", challenge.id)
            self._verdict.value = (
                "<b>The live check stopped</b> — use <code>portbinding challenge check</code>."
            )
            self._message.announce("The live check stopped: use portbinding challenge check.", urgent=True)

    def _show_verdict(self, check: Check) -> None:
        if check.solved:
            a = self.challenge.attempt
            took = _minutes((a.solved_at or time.time()) - a.started_at)
            first = a.commits[0] if a.commits else None
            called = ""
            if first is not None:
                right = first.cause == a.cause
                called = f" You committed to “{cause_words(first.cause)}” — " + (
                    "right." if right else f"the cause was “{cause_words(a.cause)}”."
                )
            self._set_verdict(
                f"✓ Solved in {took}: {check.why}.{called} Press “End challenge” to clean up.", solved=True
            )
        else:
            self._set_verdict(f"✗ Not solved yet: {check.why}", solved=False)

    def _set_verdict(self, text: str, *, solved: bool) -> None:
        if text == self._shown_verdict:
            return  # unchanged: do not re-announce it ten times a second
        self._shown_verdict, self._shown_solved = text, solved
        head, _, rest = text.partition(":")
        colour = "#2e7d32" if solved else "#b71c1c"  # the words say it too: colour is never the only signal
        self._verdict.value = (
            f'<div class="pbl-verdict-{"solved" if solved else "open"}" '
            f'style="border-left:4px solid {colour};padding:4px 8px"><b>{esc(head)}</b>:{esc(rest)}</div>'
        )
        # Solved interrupts whatever is being read; "not yet" waits its turn.
        self._message.announce(f"Challenge: {text}", urgent=solved)

    def _sync_buttons(self) -> None:
        started = self._challenge is not None and not self._challenge.ended
        self._start.disabled = started
        # A disabled primary button still looks pressable: say it in words, and drop the colour.
        running = "Challenge running — End it to draw another"
        self._start.description = self._start.tooltip = running if started else "Start the challenge"
        self._start.button_style = "" if started else "primary"
        for item in (*self._rung_buttons.values(), self._commit, self._hint, self._run, self._end):
            item.disabled = not started
