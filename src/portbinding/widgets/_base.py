"""What every widget with a worker shares: its engine, its message line, its worker, its repairs.

A job that runs into a fault the widget can repair -- an exercise image not built yet, a host
port already taken -- shows the error as usual and, next to it, one button that repairs it and
runs the same thing again ("Build portbinding/notebook:1.0", "Use port 49153 instead").
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets

from portbinding import builder, images
from portbinding.command import RunSpec
from portbinding.engine import Engine
from portbinding.engine_errors import moved_to_free_port
from portbinding.errors import ImageMissing, PortBindingError, PortInUse, UnknownImage
from portbinding.widgets._ui import BuildBars, MessageArea, button
from portbinding.widgets._worker import Worker
from portbinding.widgets.session import lesson_engine

Rerun = Callable[[RunSpec], object]


class FixOffer(widgets.VBox):  # type: ignore[misc]
    """One repair button under a widget's message (hidden while there is nothing to repair).

    Its action runs as a job of the widget's worker, so the widget's buttons are disabled
    meanwhile and a failure is shown as a message like any other.
    """

    def __init__(self, worker: Worker) -> None:
        self._worker = worker
        self._button = button("", css_class="pbl-offer", style="warning", icon="wrench")
        self._bars = BuildBars()
        self._action: Callable[[], object] | None = None
        self._label = ""
        worker.add_buttons(self._button)
        self._button.on_click(self._on_click)
        super().__init__(children=[self._button, self._bars])
        self.add_class("pbl-offer-box")
        self._button.layout.display = "none"

    @property
    def description(self) -> str:
        """The button's text ("" when nothing is offered)."""
        return str(self._button.description) if self._action is not None else ""

    @property
    def bars(self) -> BuildBars:
        return self._bars

    def offer(self, description: str, action: Callable[[], object], *, label: str, tooltip: str) -> None:
        """Show a button that runs ``action`` (as a worker job called ``label``)."""
        self._action, self._label = action, label
        self._button.description = description
        self._button.tooltip = tooltip
        self._button.layout.display = None
        self._bars.clear()

    def clear(self) -> None:
        """Hide the button (a build's progress bars stay until the next offer)."""
        self._action = None
        self._button.layout.display = "none"

    def accept(self) -> object:
        """Run the offered repair now, in this thread (for cells and tests); raises if none is offered."""
        return self._worker.call(self._accept_job, label=self._label or "Repairing")

    def _on_click(self, _: widgets.Button) -> None:
        self._worker.submit(self._accept_job, label=self._label or "Repairing")

    def _accept_job(self) -> object:
        action = self._action
        if action is None:
            raise PortBindingError("There is nothing to repair right now.", hint="run something first")
        self.clear()
        return action()


def course_image(reference: str) -> images.ImageDef | None:
    """The course image definition tagged ``reference`` (no tag means ``:latest``), if any."""
    return images.find_image(reference)


class WorkerBacked:
    """Mixin for composite widgets whose buttons run engine work on one worker thread.

    The widget sets ``_given_engine`` (None: the lesson's shared engine), ``_message`` and
    ``_worker`` in its constructor; a widget that offers repairs also sets ``_offer``.
    """

    _given_engine: Engine | None
    _message: MessageArea
    _worker: Worker
    _offer: FixOffer

    @property
    def message(self) -> str:
        """The current message as plain text."""
        return self._message.text

    @property
    def worker(self) -> Worker:
        return self._worker

    @property
    def engine(self) -> Engine:
        """The engine given to the widget, else the lesson's shared one (connected on first use)."""
        return self._given_engine or lesson_engine()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait for a button's job to finish; False if ``timeout`` seconds passed first."""
        return self._worker.wait_idle(timeout)

    @property
    def offer(self) -> FixOffer:
        """The repair button under the message ("Build ...", "Use port N instead")."""
        return self._offer

    def _offer_repair(self, error: ImageMissing | PortInUse, spec: RunSpec, rerun: Rerun) -> PortBindingError:
        """Offer the repair for ``error``, then ``rerun`` the repaired spec; returns the error to show.

        The returned error keeps the engine's explanation and names the button as the next step;
        with nothing to offer (not a course image, no free port found) it is ``error`` itself.
        """
        if isinstance(error, PortInUse):
            if error.suggestion is None:
                return error
            moved = moved_to_free_port(spec, error)
            port = error.suggestion
            self._offer.offer(
                f"Use port {port} instead",
                lambda: rerun(moved),
                label=f"Starting it on host port {port}",
                tooltip=f"Run the same line with host port {port}: {moved.to_cli()}",
            )
            return PortInUse(
                error.message,
                port=error.port,
                suggestion=port,
                hint=f"click “Use port {port} instead” to run the same line on a free host port "
                f"({moved.to_cli()}), or stop whatever holds port {error.port} and run it again",
            )
        definition = None if isinstance(error, UnknownImage) else course_image(spec.image)
        if definition is None:
            return error

        def build_then_rerun() -> object:
            self._message.busy(f"Building {spec.image}: the first build takes a minute or two…")
            builder.build_images(self.engine.client, [definition.name], progress=self._offer.bars.update)
            return rerun(spec)

        self._offer.offer(
            f"Build {spec.image}",
            build_then_rerun,
            label=f"Building {spec.image}",
            tooltip=f"Build the exercise image {spec.image} on this engine, then run it again",
        )
        return ImageMissing(
            error.message,
            hint=f"click “Build {spec.image}”: it builds the image (a minute or two; the bar shows its "
            f"steps) and then runs it again. In a terminal: `portbinding images build {definition.name}`",
        )
