"""Small view helpers shared by the widgets: the message area, colours, escaped HTML.

Everything a widget shows is plain HTML built here, so the look is consistent and every piece
of learner-visible text is escaped in one place.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from typing import Literal, TypeAlias

import ipywidgets as widgets

from portbinding.builder import BuildEvent
from portbinding.errors import EngineStopped, PortBindingError
from portbinding.widgets._announce import Announcer

GREEN = "#2e7d32"
AMBER = "#f9a825"
RED = "#c62828"
GREY = "#9e9e9e"
BLUE = "#1565c0"

MessageKind: TypeAlias = Literal["", "info", "busy", "ok", "error"]

_MESSAGE_STYLE: dict[str, tuple[str, str, str]] = {
    # kind: (icon, border colour, ARIA role)
    "info": ("\u2139", BLUE, "status"),  # information source
    "busy": ("⏳", GREY, "status"),
    "ok": ("✔", GREEN, "status"),
    "error": ("✖", RED, "alert"),
}


def esc(text: object) -> str:
    """``text`` as HTML-safe text."""
    return html.escape(str(text), quote=True)


def pre(text: str, *, css_class: str = "pbl-pre") -> str:
    """Monospaced, wrapped, escaped text."""
    return (
        f'<pre class="{css_class}" style="white-space:pre-wrap;word-break:break-word;margin:2px 0;'
        "padding:6px 8px;background:var(--jp-layout-color2,#f5f5f5);color:var(--jp-content-font-color1,#222);"
        f'border-radius:4px;font-size:12px;line-height:1.4">{esc(text)}</pre>'
    )


def code(text: str) -> str:
    """Inline code."""
    return (
        '<code style="background:var(--jp-layout-color2,#f5f5f5);padding:1px 4px;border-radius:3px">'
        f"{esc(text)}</code>"
    )


_BACKTICKED = re.compile(r"`([^`\n]+)`")


def inline(text: str) -> str:
    """Plain text as HTML, with `backticked` spans shown as inline code (as Markdown would)."""
    parts = _BACKTICKED.split(str(text))
    # split() alternates: text, code, text, code, ... -- the odd items were between backticks.
    return "".join(code(part) if index % 2 else esc(part) for index, part in enumerate(parts))


def heading(text: str, *, level: int = 4) -> str:
    return f'<h{level} style="margin:4px 0 2px 0">{esc(text)}</h{level}>'


# ipywidgets' HTML widget sets a line-height of one widget row (28 px) on its content, which spaces
# wrapped text far apart; every block built here sets its own.
LINE_HEIGHT = "line-height:1.45"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, css_class: str = "pbl-table") -> str:
    """An HTML table; cells are given as already-built HTML (use ``esc`` for plain text).

    All-empty headers give a table without a header row (a list of label/value pairs).
    """
    head = "".join(
        f'<th style="text-align:left;padding:2px 12px 2px 0;border-bottom:1px solid {GREY}">{esc(h)}</th>'
        for h in headers
    )
    cell = "padding:2px 12px 2px 0;vertical-align:top"
    body = "".join(
        "<tr>"
        + "".join(
            f'<td style="{cell}{";white-space:nowrap" if index == 0 else ""}">{c}</td>'
            for index, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    thead = f"<thead><tr>{head}</tr></thead>" if any(headers) else ""
    return (
        f'<table class="{css_class}" style="border-collapse:collapse;font-size:13px;{LINE_HEIGHT}">'
        f"{thead}<tbody>{body}</tbody></table>"
    )


def badge(ok: bool | None, *, yes: str = "yes", no: str = "no", unknown: str = "?") -> str:
    """A coloured word: green ``yes`` / red ``no`` / grey ``unknown``."""
    colour, word = (GREY, unknown) if ok is None else ((GREEN, yes) if ok else (RED, no))
    return f'<span style="color:{colour};font-weight:600">{esc(word)}</span>'


def error_text(error: BaseException) -> tuple[str, str]:
    """(message, next step) for any exception, never a traceback.

    Course errors carry both already; anything else gets a short generic message that names
    the exception type, so a learner can still ask for help with it.
    """
    if isinstance(error, EngineStopped):
        return error.message, RECONNECT_HINT
    if isinstance(error, PortBindingError):
        return error.message, error.hint
    first_line = (str(error).strip().splitlines() or [""])[0][:160]
    what = f"{type(error).__name__}: {first_line}" if first_line else type(error).__name__
    return (
        f"Something unexpected went wrong ({what}).",
        "try once more; if it happens again, run `portbinding doctor` in a terminal and ask for help "
        "with this message",
    )


# A widget's engine client reconnects by itself: once the engine answers again, the next click works.
RECONNECT_HINT = (
    "start it again with `portbinding doctor --install` in a terminal (or start Docker Desktop). "
    "This panel reconnects by itself: once the engine runs, click again -- no kernel restart needed. "
    "Containers that stopped with the engine need a new Run."
)


def message_html(kind: MessageKind, text: str, *, hint: str = "", live: bool = True) -> str:
    """The HTML of a message box (also used to show a course error in a cell output).

    ``live``: carry its ARIA role, for a box that appears once (a cell's error output). A
    widget's message box does not: its Announcer reads the message aloud (see _announce.py).
    """
    if not kind or not text:
        return ""
    icon, colour, role = _MESSAGE_STYLE[kind]
    role_attribute = f' role="{role}"' if live else ""
    next_step = (
        f'<div class="pbl-msg-hint" style="margin-top:3px"><b>Next step:</b> {esc(hint)}</div>'
        if hint
        else ""
    )
    return (
        f'<div class="pbl-msg pbl-msg-{kind}"{role_attribute} style="border-left:4px solid {colour};'
        "padding:4px 8px;margin:4px 0;background:var(--jp-layout-color1,#fff);white-space:pre-wrap;"
        f'font-size:13px;{LINE_HEIGHT}"><span aria-hidden="true" style="color:{colour}">{icon}</span> '
        f'<span class="pbl-msg-text">{esc(text)}</span>{next_step}</div>'
    )


class MessageArea(widgets.VBox):  # type: ignore[misc]
    """Where a widget tells the learner what happened: info, busy, ok, or a friendly error.

    Each message is shown and also read aloud by screen readers (an error at once, the rest
    politely); ``announce`` reads something aloud without a box -- a probe's verdict, a hint.
    ``kind`` and ``text`` (plain text, message and next step) are kept for tests and callers.
    """

    def __init__(self) -> None:
        self._html = widgets.HTML(value="")
        self._html.add_class("pbl-message")
        self._announcer = Announcer()
        super().__init__(children=[self._html, self._announcer])
        self.add_class("pbl-message-area")
        self._kind: MessageKind = ""
        self._text = ""

    @property
    def kind(self) -> MessageKind:
        return self._kind

    @property
    def text(self) -> str:
        """The message as plain text ("" when empty); an error includes its "Next step: ..." line."""
        return self._text

    @property
    def value(self) -> str:
        """The message box's HTML."""
        return str(self._html.value)

    @property
    def said(self) -> str:
        """What screen readers were last given to read."""
        return self._announcer.said

    @property
    def heard(self) -> list[tuple[str, bool]]:
        """What screen readers were given to read lately, oldest first, with "urgent" flags."""
        return self._announcer.heard

    def show(self, kind: MessageKind, text: str, *, hint: str = "") -> None:
        self._kind = kind
        self._text = f"{text}\nNext step: {hint}" if hint else text
        self._html.value = message_html(kind, text, hint=hint, live=False)
        if kind and text:
            self._announcer.announce(self._text, urgent=kind == "error")

    def announce(self, text: str, *, urgent: bool = False) -> None:
        """Read ``text`` aloud to screen-reader users; nothing changes on the screen."""
        self._announcer.announce(text, urgent=urgent)

    def info(self, text: str) -> None:
        self.show("info", text)

    def busy(self, text: str) -> None:
        self.show("busy", text)

    def ok(self, text: str) -> None:
        self.show("ok", text)

    def error(self, error: BaseException) -> None:
        message, hint = error_text(error)
        self.show("error", message, hint=hint)

    def clear(self) -> None:
        self.show("", "")


def button(
    description: str, *, css_class: str, tooltip: str = "", style: str = "", icon: str = ""
) -> widgets.Button:
    """A button with a stable CSS class (browser tests and custom styles find it by that)."""
    made = widgets.Button(
        description=description,
        tooltip=tooltip or description,
        button_style=style,
        icon=icon,
        layout=widgets.Layout(width="auto", min_width="110px"),  # long labels are not cut off
    )
    made.add_class(css_class)
    return made


class BuildBars(widgets.VBox):  # type: ignore[misc]
    """One progress bar per image being built, fed by ``images.build_images``' progress callback.

    Called on a worker thread: it only changes widget state, never prints.
    """

    children: tuple[widgets.IntProgress, ...]  # the traitlet, typed (an annotation only)

    def __init__(self) -> None:
        super().__init__()
        self.add_class("pbl-build-progress")
        self._bars: dict[str, widgets.IntProgress] = {}

    def update(self, event: BuildEvent) -> None:
        bar = self._bars.get(event.image)
        if bar is None:
            bar = widgets.IntProgress(
                min=0,
                max=max(event.steps, 1),
                value=0,
                description=event.image,
                style={"description_width": "initial"},
                layout=widgets.Layout(width="640px"),
            )
            bar.add_class("pbl-build-bar")
            self._bars[event.image] = bar
            self.children = (*self.children, bar)
        bar.max = max(event.steps, 1)
        bar.value = min(event.step, bar.max)
        bar.description = f"{event.image}: {event.message[:40]}"
        if event.done:
            bar.value = bar.max
            bar.bar_style = "success"
            bar.description = f"{event.image}: {'up to date' if event.cached else 'built'}"

    def clear(self) -> None:
        self._bars = {}
        self.children = ()
