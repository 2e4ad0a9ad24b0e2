"""One worker thread per widget: long work off the kernel's main thread, errors as messages.

Engine calls, builds and waits take seconds; run in a button handler they would block the
kernel (and every other widget) until done. A ``Worker`` runs them on its own thread, one job
at a time, disables the widget's buttons while busy, and turns any exception into a message
for the learner -- course errors as ``message`` + ``Next step: hint``, anything else as a short
generic sentence. Never a traceback, and never ``print``: ipykernel 7 drops output written from
threads, so results reach the page only through widget state.

Public methods of the widgets also have a synchronous form (``Worker.call``), for notebook
cells and tests, which does the same bookkeeping in the caller's thread and re-raises.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from portbinding.errors import PortBindingError
from portbinding.widgets._ui import MessageArea

LOGGER = logging.getLogger(__name__)

T = TypeVar("T")

# How long a synchronous call waits for a button's job to finish before giving up.
SYNC_WAIT_S = 300.0


class Busy(PortBindingError):
    """The widget is still working on an earlier step."""


class Worker:
    """Runs a widget's long jobs on one background thread, one at a time."""

    def __init__(
        self,
        message: MessageArea,
        *,
        buttons: Sequence[Any] = (),
        on_idle: Callable[[], None] | None = None,
        name: str = "portbinding-widget",
    ) -> None:
        self._message = message
        self._buttons = list(buttons)
        self._on_idle = on_idle
        self._name = name
        self._jobs: queue.SimpleQueue[tuple[Callable[[], object], str]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._thread: threading.Thread | None = None
        self._label = ""
        self._stale = ""  # a "still busy" note that is out of date once the job ends
        self._pending: tuple[Callable[[], object], str] | None = None  # the latest quiet job refused
        self.last_error: BaseException | None = None

    # ------------------------------------------------------------------ state

    @property
    def busy(self) -> bool:
        """True while a job is queued or running."""
        return not self._idle.is_set()

    @property
    def label(self) -> str:
        """What the worker is doing now ("" when idle)."""
        return self._label if self.busy else ""

    def add_buttons(self, *buttons: Any) -> None:
        """More buttons to disable while busy."""
        self._buttons.extend(buttons)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no job is queued or running; False if ``timeout`` seconds passed first."""
        return self._idle.wait(timeout)

    # ------------------------------------------------------------------ running

    def submit(self, job: Callable[[], object], *, label: str, quiet: bool = False) -> bool:
        """Run ``job`` on the worker thread; False (and a note) if the worker is still busy.

        ``quiet`` jobs (redrawing a view) neither announce themselves nor complain when busy: the
        latest one waits and runs after the current job, so a view never stays out of date.
        """
        if not self._begin(label):
            if quiet:
                with self._lock:
                    self._pending = (job, label)
                return False
            self._message.info(f"Still busy: {self._label}. Try again when it has finished.")
            self._stale = self._message.text
            return False
        if not quiet:
            self._message.busy(f"{label}…")
        self._ensure_thread()
        self._jobs.put((job, label))
        return True

    def call(self, job: Callable[[], T], *, label: str) -> T:
        """Run ``job`` now, in this thread, with the same bookkeeping; exceptions are shown AND raised."""
        if threading.current_thread() is self._thread:
            return job()  # already inside a job of this worker (a handler calling the public API)
        if not self._idle.wait(SYNC_WAIT_S):
            raise Busy(
                f"The widget is still busy with: {self._label}.",
                hint="wait until it has finished (the buttons are enabled again), then run the cell again",
            )
        while not self._begin(label):  # another caller slipped in: wait for it too
            self._idle.wait(SYNC_WAIT_S)
        self._message.busy(f"{label}…")
        try:
            return job()
        except Exception as error:
            self._report(error)
            raise
        finally:
            self._finish()

    # ------------------------------------------------------------------ plumbing

    def _begin(self, label: str) -> bool:
        with self._lock:
            if not self._idle.is_set():
                return False
            self._idle.clear()
            self._label = label
        for item in self._buttons:
            item.disabled = True
        return True

    def _finish(self) -> None:
        if self._message.kind == "busy" or self._message.text == self._stale:
            self._message.clear()  # the job said nothing more: do not leave "working…" up
        self._stale = ""
        with self._lock:
            pending, self._pending = self._pending, None
            if pending is not None:
                self._label = pending[1]  # still busy: the view redraw that waited runs next
        if pending is not None:
            self._ensure_thread()
            self._jobs.put(pending)
            return
        for item in self._buttons:
            item.disabled = False
        if self._on_idle is not None:
            try:
                self._on_idle()  # lets the widget re-disable what makes no sense now (Stop, no container)
            except Exception as error:
                LOGGER.debug("on_idle of %s failed", self._name, exc_info=True)
                self._report(error)
        with self._lock:
            self._label = ""
            self._idle.set()

    def _report(self, error: BaseException) -> None:
        self.last_error = error
        # DEBUG only: a WARNING would reach the kernel's stderr from this thread, which ipykernel 7
        # attaches to whichever cell ran last (or drops). The learner sees the message instead.
        LOGGER.debug("%s: job failed", self._name, exc_info=error)
        self._message.error(error)

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                # A daemon thread: a job stuck on a dead engine must not keep the kernel from exiting.
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            job, _label = self._jobs.get()
            try:
                job()
            except Exception as error:
                self._report(error)
            finally:
                self._finish()
