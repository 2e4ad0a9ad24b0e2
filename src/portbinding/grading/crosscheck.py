"""Which door checks a test cell's own check calls vouch for: the cross-check behind every grade.

Learner code shares the kernel with the tests, so a notebook can replace ``check_fix`` by a
wrapper that calls the real door with looser settings -- without ``host_port=8888``, without
``private=True``, with ``images=[]`` so that any course image will do, or ``check_cause`` with
another line -- and the door would run a check that passes. What the kernel says about a test
cell means nothing; two things do not come from the kernel:

* **the test cell's source**: nbgrader's autograde restores every locked cell (test cells are)
  from the gradebook before the notebook runs (``OverwriteCells``), so the source graded is the
  instructor's;
* **the door's record** of what it was asked, with which settings, and what it found.

So each check call in a test cell's source (``check_fix(fixed_line, container_port=8888,
images=[...])``) is read with ``ast``: every argument written as a literal -- and every
parameter left out, at its default -- is a *setting* of the question, which the requests the
door recorded during that cell must carry exactly. An argument that is not a literal (the
answer variable: ``fixed_line``, ``cause``, ``port_command``) is taken as the kernel sent it:
sending another answer than the notebook shows needs a right answer, which the notebook could
have shown instead. A cell passes only if every check the door ran during it passed and
matched one of the cell's calls, and every call the cell makes unconditionally was matched.

An honest notebook sends exactly the cell's settings (the check functions put them into the
request as written), so it never fails here; the settings are compared as JSON, the form in
which the door received them.

Standard library (and IPython, to read cells holding magics) only: the door imports
``request_settings`` to record what it was asked.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from portbinding.grading import checks

# The check functions a test cell calls, and the request kind each sends.
CHECKS: dict[str, tuple[Callable[..., Any], str]] = {
    "check_fix": (checks.check_fix, "check_run"),
    "check_cause": (checks.check_cause, "check_cause"),
    "check_config": (checks.check_config, "check_config"),
    "check_image": (checks.check_image, "check_image"),
    "check_compose": (checks.check_compose, "check_compose"),
    "check_compose_file": (checks.check_compose_file, "check_compose_file"),
}
# Request fields that carry the learner's answer rather than the question's settings: kept out
# of the ledger (they can be large), and never compared.
ANSWER_FIELDS = {"check_run": {"line", "port_query"}, "check_cause": {"cause"}, "check_config": {"line"},
                 "check_image": {"files"}, "check_compose": {"compose"},
                 "check_compose_file": {"compose"}}  # fmt: skip
MAX_SETTING_CHARS = 400  # longer values are recorded by digest: they match no instructor literal
_ANY = object()  # a non-literal argument: the answer, taken as sent


@dataclass(frozen=True)
class Call:
    """One check call in a test cell: its request kind, the settings it fixes, and whether it always runs."""

    name: str
    kind: str
    settings: dict[str, Any]
    unconditional: bool

    def matches(self, check: dict[str, Any]) -> bool:
        sent = check.get("settings")
        if check.get("kind") != self.kind or not isinstance(sent, dict):
            return False
        return all(sent.get(field, None) == value for field, value in self.settings.items())


def setting_fields(kind: str) -> tuple[str, ...]:
    """The request fields that are a question's settings for ``kind`` (its check's parameters, no answers)."""
    for function, known in CHECKS.values():
        if known == kind:
            skipped = {*ANSWER_FIELDS[kind], "context"}
            return tuple(p for p in inspect.signature(function).parameters if p not in skipped)
    return ()


def request_settings(request: dict[str, Any]) -> dict[str, Any]:
    """What the door keeps of a request's settings, as comparable JSON: only its kind's fields, each small."""
    return {field: _comparable(request.get(field)) for field in setting_fields(str(request.get("kind")))}


def calls_in(source: str) -> list[Call] | None:
    """The check calls in a test cell's source; None when the source cannot be read as Python."""
    tree = _parse(source)
    if tree is None:
        return None
    found: list[Call] = []
    _collect(tree, unconditional=True, found=found)
    return found


def verdict(source: str, during: list[dict[str, Any]]) -> str | None:
    """Why the door's checks during a test cell do not vouch for it (None: they do).

    Called for cells whose source names a check. ``during`` are the ledger's check events
    recorded while the cell ran.
    """
    calls = calls_in(source)
    if not during:
        return "the check never reached the grader"
    if not all(check.get("passed") for check in during):
        return "the check failed there"
    if not calls:
        return None  # unreadable, or its calls are hidden in strings (%time): passing checks are all there is
    unmatched = [check for check in during if not any(call.matches(check) for call in calls)]
    if unmatched:
        return f"the check that reached the grader {_difference(unmatched[0], calls)}"
    missing = [call for call in calls if call.unconditional and not any(call.matches(c) for c in during)]
    if missing:
        return f"{missing[0].name} as this test calls it never reached the grader"
    return None


# ---------------------------------------------------------------------------------- reading


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except SyntaxError:
        pass
    try:  # a cell with IPython magics (%, !): read the Python IPython would run
        from IPython.core.inputtransformer2 import TransformerManager

        return ast.parse(TransformerManager().transform_cell(source))  # type: ignore[no-untyped-call]
    except Exception:  # anything IPython cannot turn into Python: unreadable
        return None


# Nodes on the way to a call that do not make it conditional (statements run top to bottom).
_STRAIGHT = (ast.Module, ast.Expr, ast.Assign, ast.AnnAssign, ast.keyword, ast.Call, ast.Attribute)


def _collect(node: ast.AST, *, unconditional: bool, found: list[Call]) -> None:
    for child in ast.iter_child_nodes(node):
        straight = unconditional and isinstance(node, _STRAIGHT)
        if isinstance(child, ast.Call):
            call = _check_call(child, unconditional=straight)
            if call is not None:
                found.append(call)
        _collect(child, unconditional=straight, found=found)


def _check_call(node: ast.Call, *, unconditional: bool) -> Call | None:
    func = node.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    if name not in CHECKS:
        return None
    function, kind = CHECKS[name]
    if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
        return Call(name, kind, {}, unconditional=False)  # *args/**kwargs: nothing can be read from it
    values = [_literal(a) for a in node.args]
    named = {str(k.arg): _literal(k.value) for k in node.keywords}
    try:
        bound = inspect.signature(function).bind(*values, **named)
    except TypeError:
        return Call(name, kind, {}, unconditional=False)  # a call that fails in the kernel too
    bound.apply_defaults()
    fields = setting_fields(kind)
    settings = {
        field: _comparable(value)
        for field, value in bound.arguments.items()
        if value is not _ANY and field in fields
    }
    return Call(name, kind, settings, unconditional)


def _literal(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _ANY


def _comparable(value: object) -> Any:
    """``value`` as the door holds it after JSON; a long one by its digest (it matches no literal)."""
    try:
        text = json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        text = json.dumps(repr(value))
    if len(text) > MAX_SETTING_CHARS:
        return {"sha256": hashlib.sha256(text.encode()).hexdigest()}
    return json.loads(text)


def _difference(check: dict[str, Any], calls: list[Call]) -> str:
    """How a recorded check differs from the closest call of the cell, in words."""
    same_kind = [call for call in calls if call.kind == check.get("kind")]
    if not same_kind:
        return f"was another kind of check ({str(check.get('kind'))[:40]}) than this test runs"
    raw = check.get("settings")
    sent: dict[str, Any] = raw if isinstance(raw, dict) else {}
    call = same_kind[0]
    differ = [f"{k}={v!r} (it ran with {sent.get(k)!r:.60})" for k, v in sorted(call.settings.items())
              if sent.get(k) != v]  # fmt: skip
    return "ran with other settings than this test asks for: " + "; ".join(differ[:4])
