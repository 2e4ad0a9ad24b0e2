"""FlashCards and InterviewCards: recall practice, no engine needed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import ipywidgets as widgets

from portbinding.errors import PortBindingError
from portbinding.widgets._ui import BLUE, GREY, button, esc, inline

Level: TypeAlias = Literal["beginner", "intermediate", "expert"]
LEVELS: tuple[Level, ...] = ("beginner", "intermediate", "expert")

_CARD_STYLE = (
    "border:1px solid var(--jp-border-color1,#bbb);border-radius:8px;padding:14px 16px;min-height:70px;"
    "background:var(--jp-layout-color1,#fff);font-size:14px;line-height:1.5"
)


class FlashCards(widgets.VBox):  # type: ignore[misc]
    """A deck of (front, back) cards: Flip shows the other side, Next/Previous move through the deck."""

    def __init__(self, cards: Sequence[tuple[str, str]]) -> None:
        if not cards:
            raise PortBindingError(
                "A deck of flash cards needs at least one card.", hint="pass a list of (front, back) pairs"
            )
        self._cards = [(str(front), str(back)) for front, back in cards]
        self._index = 0
        self._flipped = False
        self._card = widgets.HTML()
        self._card.add_class("pbl-card")
        self._progress = widgets.HTML()
        self._progress.add_class("pbl-card-progress")
        self._previous = button("Previous", css_class="pbl-card-previous", icon="arrow-left")
        self._flip = button("Flip", css_class="pbl-card-flip", style="info", icon="retweet")
        self._next = button("Next", css_class="pbl-card-next", icon="arrow-right")
        self._previous.on_click(self._on_previous_click)
        self._flip.on_click(self._on_flip_click)
        self._next.on_click(self._on_next_click)
        super().__init__(
            children=[self._card, widgets.HBox([self._previous, self._flip, self._next, self._progress])]
        )
        self.add_class("pbl-flashcards")
        self._render()

    @property
    def index(self) -> int:
        """The card shown, counting from 0."""
        return self._index

    @property
    def flipped(self) -> bool:
        """True when the back of the card is shown."""
        return self._flipped

    @property
    def showing(self) -> str:
        """The text on the visible side."""
        front, back = self._cards[self._index]
        return back if self._flipped else front

    @property
    def progress(self) -> str:
        """``"3 / 12"``."""
        return f"{self._index + 1} / {len(self._cards)}"

    def __repr__(self) -> str:  # the text/plain fallback where widgets cannot render
        return f"FlashCards({self.progress})"

    def flip(self) -> None:
        self._flipped = not self._flipped
        self._render()

    def next(self) -> None:
        """The next card, front side up (stays on the last card)."""
        self._go(self._index + 1)

    def previous(self) -> None:
        """The previous card, front side up (stays on the first card)."""
        self._go(self._index - 1)

    def _on_flip_click(self, _: Any) -> None:
        self.flip()

    def _on_next_click(self, _: Any) -> None:
        self.next()

    def _on_previous_click(self, _: Any) -> None:
        self.previous()

    def _go(self, index: int) -> None:
        self._index = max(0, min(index, len(self._cards) - 1))
        self._flipped = False
        self._render()

    def _render(self) -> None:
        side = "answer" if self._flipped else "question"
        colour = BLUE if self._flipped else GREY
        self._card.value = (
            f'<div class="pbl-card-{side}" style="{_CARD_STYLE};border-left:5px solid {colour}">'
            f'<small style="color:{colour}">{side}</small><div>{inline(self.showing)}</div></div>'
        )
        self._progress.value = f'<span style="margin-left:8px">{self.progress}</span>'
        self._previous.disabled = self._index == 0
        self._next.disabled = self._index == len(self._cards) - 1
        self._flip.description = "Show question" if self._flipped else "Flip"


@dataclass(frozen=True)
class InterviewQuestion:
    """An interview question at a level, with the answer a senior engineer would give."""

    level: Level
    question: str
    senior_answer: str

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise PortBindingError(
                f"{self.level!r} is not a level: expected one of {', '.join(LEVELS)}.",
                hint="use beginner, intermediate or expert",
            )


class InterviewCards(widgets.VBox):  # type: ignore[misc]
    """Interview questions filtered by level; "Show senior answer" reveals the answer."""

    def __init__(self, questions: Sequence[InterviewQuestion]) -> None:
        if not questions:
            raise PortBindingError(
                "InterviewCards needs at least one question.",
                hint="pass a list of InterviewQuestion(level, question, senior_answer)",
            )
        self._questions = list(questions)
        self._index = 0
        self._revealed = False
        self._level = widgets.ToggleButtons(
            options=[("all", "all")] + [(lv, lv) for lv in LEVELS], value="all", description="Level"
        )
        self._level.add_class("pbl-interview-level")
        self._question = widgets.HTML()
        self._question.add_class("pbl-interview-question")
        self._answer = widgets.HTML()
        self._answer.add_class("pbl-interview-answer")
        self._progress = widgets.HTML()
        self._previous = button("Previous", css_class="pbl-interview-previous", icon="arrow-left")
        self._reveal = button(
            "Show senior answer", css_class="pbl-interview-reveal", style="info", icon="eye"
        )
        self._next = button("Next", css_class="pbl-interview-next", icon="arrow-right")
        self._level.observe(self._on_level_value, names="value")
        self._previous.on_click(self._on_previous_click)
        self._reveal.on_click(self._on_reveal_click)
        self._next.on_click(self._on_next_click)
        super().__init__(
            children=[
                self._level,
                self._question,
                widgets.HBox([self._previous, self._reveal, self._next, self._progress]),
                self._answer,
            ]
        )
        self.add_class("pbl-interview")
        self._render()

    @property
    def level(self) -> str:
        """The level filter: "all", "beginner", "intermediate" or "expert"."""
        return str(self._level.value)

    @level.setter
    def level(self, value: str) -> None:
        self._level.value = value

    @property
    def visible_questions(self) -> list[InterviewQuestion]:
        """The questions the filter lets through, in order."""
        if self.level == "all":
            return list(self._questions)
        return [q for q in self._questions if q.level == self.level]

    @property
    def current(self) -> InterviewQuestion | None:
        """The question shown (None when no question has the chosen level)."""
        visible = self.visible_questions
        return visible[self._index] if visible else None

    @property
    def answer_shown(self) -> bool:
        return self._revealed

    @property
    def progress(self) -> str:
        visible = self.visible_questions
        return f"{self._index + 1} / {len(visible)}" if visible else "0 / 0"

    def __repr__(self) -> str:  # the text/plain fallback where widgets cannot render
        return f"InterviewCards(level={self.level!r}, {self.progress})"

    def reveal(self) -> None:
        """Show (or hide again) the senior answer."""
        self._revealed = not self._revealed
        self._render()

    def next(self) -> None:
        self._go(self._index + 1)

    def previous(self) -> None:
        self._go(self._index - 1)

    def _on_level_value(self, _: dict[str, Any]) -> None:
        self._go(0)

    def _on_reveal_click(self, _: Any) -> None:
        self.reveal()

    def _on_next_click(self, _: Any) -> None:
        self.next()

    def _on_previous_click(self, _: Any) -> None:
        self.previous()

    def _go(self, index: int) -> None:
        count = len(self.visible_questions)
        self._index = max(0, min(index, count - 1)) if count else 0
        self._revealed = False
        self._render()

    def _render(self) -> None:
        current = self.current
        count = len(self.visible_questions)
        if current is None:
            self._question.value = f'<div style="{_CARD_STYLE}">No questions at this level yet.</div>'
            self._answer.value = ""
        else:
            self._question.value = (
                f'<div style="{_CARD_STYLE}"><small style="color:{GREY}">{esc(current.level)}</small>'
                f"<div>{inline(current.question)}</div></div>"
            )
            self._answer.value = (
                f'<div class="pbl-senior-answer" style="{_CARD_STYLE};border-left:5px solid {BLUE}">'
                f'<small style="color:{BLUE}">senior answer</small>'
                f"<div>{inline(current.senior_answer)}</div></div>"
                if self._revealed
                else ""
            )
        self._progress.value = f'<span style="margin-left:8px">{self.progress}</span>'
        self._previous.disabled = self._index == 0 or count == 0
        self._next.disabled = self._index >= count - 1
        self._reveal.disabled = current is None
        self._reveal.description = "Hide answer" if self._revealed else "Show senior answer"
