"""Nothing a student wrote is ever live in front of the instructor: notebooks made inert for display.

A graded notebook is shown in the instructor's browser (the formgrader, JupyterLab) and in
the student's (the feedback HTML). nbconvert renders ``text/html`` and SVG outputs, raw cells
and the HTML inside markdown as they are, and nbgrader's own formgrade/feedback templates
never pass markdown through nbconvert's sanitizer -- so a ``<script>`` printed by a cell, or
an ``<img onerror>`` in a markdown cell, ran as the instructor, with the formgrader's API at
hand. ``SanitizeNotebook`` removes every way in, at the source:

* **Outputs** are rebuilt from known fields only: streams, errors (the grade depends on
  them), and rich outputs reduced to ``text/plain`` and PNG/JPEG images (base64 checked and
  re-encoded); HTML, SVG, JavaScript, markdown, LaTeX, JSON and widget views are dropped
  with a note. Output metadata goes entirely (nbconvert writes image ``width``/``height``
  into the tag unquoted), and execution counts and stream names are forced to what nbformat
  allows (both come from the kernel, i.e. the student).
* **Markdown** is parsed with nbconvert's own markdown parser (the one that renders it); a
  cell with raw HTML, a link or image whose URL is not http(s)/mailto/relative, or a math
  macro (MathJax can make links and load extensions), is shown as its text in a fenced code
  block instead. Attachments other than PNG/JPEG are dropped.
* **Raw cells** become that same fenced text; widget state in the notebook's metadata goes.

It runs twice: in the autograde pipeline right after the sandboxed Execute step (so the
autograded notebook on disk is already inert), and again in nbconvert's HTMLExporter for the
formgrader and ``generate_feedback`` (``grader/nbgrader_config.py``), together with
nbconvert's own bleach-based ``sanitize_html``, in case a notebook reaches them another way.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from collections.abc import Iterable
from typing import Any

from nbconvert.filters.markdown_mistune import MarkdownWithMath
from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode

KEPT_MIMETYPES = ("text/plain", "image/png", "image/jpeg")
SAFE_SCHEMES = ("http", "https", "mailto")
# Markdown tokens that only structure text (rendered escaped by nbconvert's renderer).
_INERT_TOKENS = {
    "paragraph", "heading", "text", "emphasis", "strong", "codespan", "linebreak", "softbreak",
    "blank_line", "thematic_break", "block_code", "block_quote", "list", "list_item", "block_text",
    "strikethrough", "table", "table_head", "table_body", "table_row", "table_cell", "task_list_item",
    "def_list", "def_list_head", "def_list_item", "link", "image", "inline_math", "block_math",
}  # fmt: skip
_MATH_TOKENS = {"inline_math", "block_math"}
_MACRO = re.compile(r"\\[A-Za-z]")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_CONTROL = re.compile(r"[\x00-\x20\x7f-\x9f]+")
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")
_MARK = "*The grader shows this cell as text: rendered, it could have run in the reader's browser.*"


class SanitizeNotebook(Preprocessor):
    """Make a notebook inert for display (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]  # traitlets is untyped

    def preprocess(self, nb: NotebookNode, resources: Any) -> tuple[NotebookNode, Any]:
        nb.metadata.pop("widgets", None)
        done: tuple[NotebookNode, Any] = super().preprocess(nb, resources)  # type: ignore[no-untyped-call]
        return done

    def preprocess_cell(self, cell: NotebookNode, resources: Any, index: int) -> tuple[NotebookNode, Any]:
        if cell.cell_type == "code":
            cell.outputs = [clean_output(output) for output in cell.get("outputs", [])]
            count = cell.get("execution_count")
            cell.execution_count = count if isinstance(count, int) and not isinstance(count, bool) else None
        elif cell.cell_type == "markdown":
            _clean_attachments(cell)
            if not markdown_is_inert(str(cell.source)):
                cell.source = as_text(str(cell.source))
        else:  # raw (or anything nbformat does not know): never rendered as it is
            cell.cell_type = "markdown"
            cell.metadata.pop("raw_mimetype", None)
            cell.metadata.pop("format", None)
            cell.pop("attachments", None)
            cell.source = as_text(str(cell.source))
        return cell, resources


def clean_output(output: NotebookNode) -> NotebookNode:
    """A new output holding only the fields nbformat defines, with only inert data."""
    kind = output.get("output_type")
    if kind == "stream":
        name = output.get("name")
        return _node(output_type="stream", name=name if name in ("stdout", "stderr") else "stdout",
                     text=_text(output.get("text")))  # fmt: skip
    if kind == "error":
        traceback = output.get("traceback")
        lines = [_text(line) for line in traceback] if isinstance(traceback, list) else []
        return _node(
            output_type="error",
            ename=_text(output.get("ename")),
            evalue=_text(output.get("evalue")),
            traceback=lines,
        )
    if kind in ("display_data", "execute_result"):
        raw = output.get("data")
        data = raw if isinstance(raw, dict) else {}
        kept = {key: value for key in KEPT_MIMETYPES if (value := _inert(key, data.get(key))) is not None}
        dropped = sorted(str(key) for key in data if key not in kept)
        if dropped:
            note = f"[the grader removed output of type {', '.join(dropped)}: it could run in a browser]"
            kept["text/plain"] = f"{kept['text/plain']}\n{note}" if "text/plain" in kept else note
        cleaned = _node(output_type=kind, data=kept, metadata={})
        if kind == "execute_result":
            count = output.get("execution_count")
            cleaned["execution_count"] = (
                count if isinstance(count, int) and not isinstance(count, bool) else None
            )
        return cleaned
    return _node(
        output_type="stream", name="stderr", text=f"[the grader removed an output of type {kind!r:.40}]"
    )


def markdown_is_inert(source: str) -> bool:
    """Whether ``source`` renders to nothing but text, code, lists, tables and safe links."""
    try:
        # renderer=None: mistune returns the parsed tokens instead of HTML.
        tokens = MarkdownWithMath(renderer=None)(source)  # type: ignore[arg-type]
    except Exception:  # a parser error on hostile input: show the cell as text
        return False
    return all(_inert_token(token) for token in _walk(tokens))


def as_text(source: str) -> str:
    """``source`` as a fenced code block (rendered escaped, as code), under a note saying why."""
    longest = max((len(run) for run in re.findall(r"~+", source)), default=0)
    fence = "~" * max(3, longest + 1)
    return f"{_MARK}\n\n{fence}\n{source}\n{fence}\n"


def _walk(tokens: Iterable[Any]) -> Iterable[dict[str, Any]]:
    for token in tokens:
        if isinstance(token, dict):
            yield token
            yield from _walk(token.get("children") or [])


def _inert_token(token: dict[str, Any]) -> bool:
    kind = token.get("type")
    if kind not in _INERT_TOKENS:
        return False  # raw HTML (inline_html, block_html) and anything unknown
    if kind in ("link", "image"):
        return safe_url(str((token.get("attrs") or {}).get("url", "")))
    if kind in _MATH_TOKENS or kind == "text":
        # MathJax reads math in text too (\(...\) survives as text); its macros can make links.
        return not _MACRO.search(str(token.get("raw", "")))
    return True


def safe_url(url: str) -> bool:
    """Relative URLs and http(s)/mailto ones: the schemes a browser cannot run as script."""
    plain = _CONTROL.sub("", html.unescape(url))
    found = _SCHEME.match(plain)
    if found is None:
        return ":" not in plain.split("/", 1)[0]  # "a:b/c" is a scheme in a browser's eyes
    return found.group(1).lower() in SAFE_SCHEMES


def _inert(mimetype: str, value: object) -> str | None:
    text = _text(value)
    if value is None:
        return None
    if mimetype == "text/plain":
        return text
    if not _BASE64.fullmatch(text):
        return None
    try:
        return base64.b64encode(base64.b64decode(text.encode("ascii"), validate=False)).decode("ascii")
    except (binascii.Error, ValueError):
        return None


def _clean_attachments(cell: NotebookNode) -> None:
    attachments = cell.get("attachments")
    if not isinstance(attachments, dict):
        cell.pop("attachments", None)
        return
    kept = {}
    for name, bundle in attachments.items():
        if isinstance(bundle, dict):
            data = {
                key: value for key in ("image/png", "image/jpeg") if (value := _inert(key, bundle.get(key)))
            }
            if data:
                kept[str(name)] = data
    cell.attachments = kept


def _text(value: object) -> str:
    if isinstance(value, list):
        return "".join(str(item) for item in value)
    return "" if value is None else str(value)


def _node(**fields: Any) -> NotebookNode:
    return NotebookNode(fields)  # type: ignore[no-untyped-call]
