"""What every widget with a worker shares: its engine, its message line, its worker."""

from __future__ import annotations

from portbinding.engine import Engine
from portbinding.widgets._ui import MessageArea
from portbinding.widgets._worker import Worker
from portbinding.widgets.session import lesson_engine


class WorkerBacked:
    """Mixin for composite widgets whose buttons run engine work on one worker thread.

    The widget sets ``_given_engine`` (None: the lesson's shared engine), ``_message`` and
    ``_worker`` in its constructor.
    """

    _given_engine: Engine | None
    _message: MessageArea
    _worker: Worker

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
