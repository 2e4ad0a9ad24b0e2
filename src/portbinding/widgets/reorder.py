"""ReorderExercise: put shuffled steps back in order with up/down buttons, then Check.

Everything works from the keyboard (Tab to a row's Up/Down, Enter or Space moves it) and says
in words what colour also shows: each row after Check reads "in place" or "not in place".
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets

from portbinding.errors import PortBindingError
from portbinding.widgets._ui import GREEN, GREY, RED, button, esc, inline


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
            # Words, not only arrows: a screen reader says "Up", not "black up-pointing triangle". The
            # icons are the triangles the lessons' text names ("use ▲ and ▼").
            up = button("Up", css_class="pbl-reorder-up", icon="caret-up", tooltip="Move this step up")
            down = button(
                "Down", css_class="pbl-reorder-down", icon="caret-down", tooltip="Move this step down"
            )
            for item in (up, down):
                item.layout.width = item.layout.min_width = "80px"
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
        self._show_solution = button(
            "Show the right order",
            css_class="pbl-reorder-solution",
            icon="eye",
            tooltip="List the steps in the right order below; your own order stays as it is",
        )
        self._show_solution.on_click(self._on_show_solution_click)
        self._solution_view = widgets.HTML()
        self._solution_view.add_class("pbl-reorder-solution-view")
        super().__init__(
            children=[
                *rows,
                widgets.HBox([self._check, self._show_solution, self._score]),
                self._solution_view,
            ]
        )
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

    def show_solution(self) -> list[str]:
        """Show the right order under the exercise (the learner's rows do not move); returns it."""
        items = "".join(f"<li>{inline(step)}</li>" for step in self._solution)
        self._solution_view.value = (
            f'<div class="pbl-reorder-solution-list" style="line-height:1.45"><b>The right order:</b>'
            f'<ol style="margin:2px 0 4px 0">{items}</ol></div>'
        )
        return list(self._solution)

    def _on_show_solution_click(self, _: Any) -> None:
        self.show_solution()

    def _on_row_click(self, position: int, delta: int) -> None:
        self.move(position, delta)

    def _on_check_click(self, _: Any) -> None:
        self.check()

    def _render(self) -> None:
        for position, (label, step) in enumerate(zip(self._labels, self._order, strict=True)):
            if self._checked is None:
                colour, state, words = GREY, "unchecked", ""
            elif self._checked[position]:
                colour, state, words = GREEN, "right", "✔ in place"
            else:
                colour, state, words = RED, "wrong", "✖ not in place"
            verdict = f' <b class="pbl-reorder-verdict" style="color:{colour}">— {words}</b>' if words else ""
            label.value = (
                f'<div class="pbl-reorder-row pbl-reorder-{state}" style="border-left:5px solid {colour};'
                f'padding:3px 8px;margin:1px 0;line-height:1.45">'
                f"{position + 1}. {inline(step)}{verdict}</div>"
            )
        if self._checked is None:
            self._score.value = ""
        else:
            done = " — all in order!" if all(self._checked) else ""
            self._score.value = f'<span style="margin-left:8px"><b>{esc(self.score)}</b>{done}</span>'
