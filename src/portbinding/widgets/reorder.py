"""ReorderExercise: put shuffled steps back in order with up/down buttons, then Check."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets

from portbinding.errors import PortBindingError
from portbinding.widgets._ui import GREEN, GREY, RED, button, esc


class ReorderExercise(widgets.VBox):  # type: ignore[misc]
    """The steps, shuffled; the learner moves them with ▲/▼ and Check colours each row.

    The shuffle is seeded, so every learner (and every test) starts from the same order, and it
    never starts already solved.
    """

    def __init__(self, steps: Sequence[str], *, shuffle_seed: int = 7) -> None:
        if len(steps) < 2:
            raise PortBindingError(
                "A reorder exercise needs at least two steps.", hint="pass two or more steps"
            )
        if len(set(steps)) != len(steps):
            raise PortBindingError(
                "Every step must be different, or their order is ambiguous.", hint="reword the repeated steps"
            )
        self._solution = [str(step) for step in steps]
        order = list(self._solution)
        random.Random(shuffle_seed).shuffle(order)
        if order == self._solution:
            order = order[1:] + order[:1]  # a shuffle that changed nothing would be no exercise
        self._order = order
        self._checked: list[bool] | None = None
        self._labels: list[widgets.HTML] = []
        rows = []
        for position in range(len(order)):
            label = widgets.HTML(layout=widgets.Layout(width="560px"))
            label.add_class("pbl-reorder-step")
            up = button("▲", css_class="pbl-reorder-up", tooltip="Move this step up")
            down = button("▼", css_class="pbl-reorder-down", tooltip="Move this step down")
            for item in (up, down):
                item.layout.width = item.layout.min_width = "44px"
            up.on_click(lambda _, p=position: self._on_row_click(p, -1))
            down.on_click(lambda _, p=position: self._on_row_click(p, +1))
            up.disabled = position == 0
            down.disabled = position == len(order) - 1
            self._labels.append(label)
            rows.append(widgets.HBox([up, down, label]))
        self._check = button("Check", css_class="pbl-reorder-check", style="primary", icon="check")
        self._check.on_click(self._on_check_click)
        self._score = widgets.HTML()
        self._score.add_class("pbl-reorder-score")
        super().__init__(children=[*rows, widgets.HBox([self._check, self._score])])
        self.add_class("pbl-reorder")
        self._render()

    @property
    def order(self) -> list[str]:
        """The steps in the learner's current order."""
        return list(self._order)

    @property
    def solved(self) -> bool:
        return self._order == self._solution

    @property
    def score(self) -> str:
        """``"3 / 5 in place"`` after Check, else ""."""
        if self._checked is None:
            return ""
        return f"{sum(self._checked)} / {len(self._checked)} in place"

    def __repr__(self) -> str:  # the text/plain fallback where widgets cannot render
        return f"ReorderExercise({len(self._order)} steps, solved={self.solved})"

    def move(self, index: int, delta: int) -> None:
        """Move the step at ``index`` by ``delta`` places (clamped to the list)."""
        if not 0 <= index < len(self._order):
            raise PortBindingError(
                f"There is no step at position {index}.",
                hint=f"positions run from 0 to {len(self._order) - 1}",
            )
        target = max(0, min(index + delta, len(self._order) - 1))
        step = self._order.pop(index)
        self._order.insert(target, step)
        self._checked = None  # an old verdict would now colour the wrong rows
        self._render()

    def check(self) -> int:
        """Colour each row green (in place) or red, show the score; returns how many are in place."""
        self._checked = [mine == right for mine, right in zip(self._order, self._solution, strict=True)]
        self._render()
        return sum(self._checked)

    def _on_row_click(self, position: int, delta: int) -> None:
        self.move(position, delta)

    def _on_check_click(self, _: Any) -> None:
        self.check()

    def _render(self) -> None:
        for position, (label, step) in enumerate(zip(self._labels, self._order, strict=True)):
            if self._checked is None:
                colour, state = GREY, "unchecked"
            else:
                colour, state = (GREEN, "right") if self._checked[position] else (RED, "wrong")
            label.value = (
                f'<div class="pbl-reorder-row pbl-reorder-{state}" style="border-left:5px solid {colour};'
                f'padding:3px 8px;margin:1px 0;line-height:1.45">{position + 1}. {esc(step)}</div>'
            )
        if self._checked is None:
            self._score.value = ""
        else:
            done = " — all in order!" if all(self._checked) else ""
            self._score.value = f'<span style="margin-left:8px"><b>{esc(self.score)}</b>{done}</span>'
