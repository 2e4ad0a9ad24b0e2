"""One engine session per kernel: every widget and cell of a lesson shares it.

``lesson_engine()`` connects on first use; everything it starts carries the session's label,
so ``end_lesson()`` (the last cell of every lesson) and the interpreter's exit remove exactly
this lesson's containers and nothing else.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from portbinding.engine import Engine
from portbinding.errors import PortBindingError
from portbinding.widgets._ui import message_html

LOGGER = logging.getLogger(__name__)

_lock = threading.Lock()
_engine: Engine | None = None
# Widgets that show a container, told when the lesson removes containers (weakly: a widget
# whose output was cleared is garbage, and must not be kept alive or called).
_removal_watchers: list[weakref.WeakMethod[Callable[[frozenset[str], str], None]]] = []


def lesson_engine(owner: str = "lesson") -> Engine:
    """The kernel's Engine, connected on first use and cleaned up when the interpreter exits.

    Raises EngineUnavailable (a course error: message + next step) when no engine answers;
    the next call tries again, so starting the engine and re-running the cell is enough.
    """
    global _engine
    install_friendly_errors()  # first, so "no engine" is shown as a message too
    with _lock:
        if _engine is None:
            engine = Engine.connect(owner=owner)
            atexit.register(_cleanup_at_exit, engine)
            _engine = engine
            _announce(engine)
        return _engine


# What a learner on each kind of engine should know before the lesson's first container.
_DIFFERENCES = {
    "docker": "",
    "podman": (
        "Rootless Podman forwards published ports with its own helper (rootlessport), not "
        "docker-proxy; a host port below 1024 needs root; container IPs are not reachable from "
        "the host. Lesson 03 shows what each failure looks like there."
    ),
}


def engine_summary(engine: Engine) -> str:
    """One paragraph for the top of a lesson: which engine runs its containers, what differs."""
    info = engine.info
    if info.kind == "process":
        return info.describe()
    where = (
        f"Published ports open on {info.publish_host}, the engine's host -- not on this machine's localhost."
        if info.publish_host not in ("127.0.0.1", "localhost")
        else "Published ports open on this machine (127.0.0.1)."
    )
    mode = "rootless " if info.rootless else ""
    return " ".join(
        part
        for part in (
            f"This lesson runs its containers on {mode}{info.kind.capitalize()} {info.version}.",
            where,
            _DIFFERENCES.get(info.kind, ""),
        )
        if part
    )


def _announce(engine: Engine) -> None:
    """In a notebook, say which engine the lesson runs on (a no-op outside IPython)."""
    with contextlib.suppress(ImportError):
        from IPython import get_ipython
        from IPython.display import HTML, display

        if get_ipython() is not None:
            display(HTML(message_html("info", engine_summary(engine))))  # type: ignore[no-untyped-call]


def current_engine() -> Engine | None:
    """The kernel's Engine if one is connected already (never connects)."""
    return _engine


def watch_removals(callback: Callable[[frozenset[str], str], None]) -> None:
    """Call ``callback(names, how)`` when the lesson removes containers (``callback`` is a bound method).

    The widgets use it so that no light stays green and no port map draws a path for a
    container that ``end_lesson()`` or another widget's Remove took away.
    """
    with _lock:
        _removal_watchers[:] = [ref for ref in _removal_watchers if ref() is not None]
        _removal_watchers.append(weakref.WeakMethod(callback))


def announce_removed(names: Iterable[str], how: str) -> None:
    """Tell every watching widget that ``names`` are gone (``how``: "by end_lesson()", ...)."""
    gone = frozenset(names)
    if not gone:
        return
    with _lock:
        callbacks = [callback for ref in _removal_watchers if (callback := ref()) is not None]
    for callback in callbacks:
        try:
            callback(gone, how)
        except Exception:  # one widget's failure must not stop the others from updating
            LOGGER.debug("removal watcher failed", exc_info=True)


def end_lesson() -> list[str]:
    """Remove every container this lesson started; prints a one-line summary, returns their names."""
    engine = _engine
    if engine is None:
        print("Nothing to clean up: this lesson started no containers.")
        return []
    removed = engine.cleanup(session=engine.session)
    announce_removed(removed, "by end_lesson()")
    if removed:
        print(f"Removed {len(removed)} container(s) of this lesson: {', '.join(removed)}.")
    else:
        print("Nothing to clean up: no containers of this lesson are left.")
    return removed


def _cleanup_at_exit(engine: Engine) -> None:
    # At exit nothing can be shown to anyone: failures are logged, never raised.
    try:
        engine.cleanup(session=engine.session)
        engine.client.close()
    except Exception:
        LOGGER.debug("cleanup at exit failed", exc_info=True)


def install_friendly_errors() -> None:
    """In an IPython kernel, show course errors raised by a cell as a message, not a traceback.

    The cell still fails (Run All stops there, nbclient raises); only the display changes.
    Outside IPython this does nothing.
    """
    with contextlib.suppress(ImportError):
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None and PortBindingError not in getattr(shell, "custom_exceptions", ()):
            shell.set_custom_exc((PortBindingError,), _show_course_error)


def _show_course_error(
    shell: Any, etype: type[BaseException], value: BaseException, tb: Any, tb_offset: int | None = None
) -> list[str]:
    from IPython.display import HTML, display

    message = value.message if isinstance(value, PortBindingError) else str(value)
    hint = value.hint if isinstance(value, PortBindingError) else ""
    display(HTML(message_html("error", message, hint=hint)))  # type: ignore[no-untyped-call]
    return []
