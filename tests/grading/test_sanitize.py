"""Nothing a student wrote is live once rendered: every way a notebook can carry script, made inert.

A hostile notebook (script in every output type, event handlers, javascript: links, raw HTML
and MathJax macros in markdown, a raw HTML cell, widget state, forged execution counts and
stream names) goes through ``SanitizeNotebook`` and is rendered by nbconvert exactly as the
formgrader and ``generate_feedback`` render it. The page must hold no event handler, no
script URL and no script but the template's own -- and without the sanitizer, the same
notebook's page does run the student's script (so the test can fail).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, cast

import nbformat
import pytest
from nbconvert import HTMLExporter
from nbformat import NotebookNode, v4

from portbinding.grading.sanitize import SanitizeNotebook, as_text, markdown_is_inert, safe_url

# nbformat and nbconvert are untyped: typed doors to the few calls used here.
new_output = cast(Callable[..., NotebookNode], v4.new_output)
new_code_cell = cast(Callable[..., NotebookNode], v4.new_code_cell)
new_markdown_cell = cast(Callable[..., NotebookNode], v4.new_markdown_cell)
new_raw_cell = cast(Callable[..., NotebookNode], v4.new_raw_cell)
new_notebook = cast(Callable[..., NotebookNode], v4.new_notebook)
exporter_class = cast(Callable[..., Any], HTMLExporter)
MARK = "PBL_XSS"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def hostile_notebook(*, forged: bool = True) -> NotebookNode:
    """Every channel for script into a rendered notebook that we know of, each marked with MARK.

    ``forged`` adds what only a hostile kernel can write (execution counts and stream names
    that nbformat's schema refuses): nbconvert refuses to render those at all.
    """
    script = f"<script>window.{MARK}=1</script>"
    outputs = [
        new_output("display_data", data={"text/html": f'{script}<img src=x onerror="{MARK}()">'}),
        new_output(
            "display_data", data={"image/svg+xml": f'<svg onload="{MARK}()"><script>{MARK}</script></svg>'}
        ),
        new_output("display_data", data={"application/javascript": f"window.{MARK}=1"}),
        new_output("display_data", data={"text/markdown": f'<img src=x onerror="{MARK}()">'}),
        new_output(
            "display_data",
            data={"application/vnd.jupyter.widget-view+json": {"model_id": MARK, "version_major": 2}},
        ),
        new_output(
            "display_data", data={"image/png": PNG}, metadata={"image/png": {"width": f"1 onerror={MARK}()"}}
        ),
        new_output("display_data", data={"image/png": f'"><script>{MARK}</script>'}),
        new_output("execute_result", data={"text/plain": "x"}, execution_count=1),
        new_output("stream", name="stdout", text=f"{script} printed as text"),
    ]
    code = new_code_cell("print('hello')", outputs=outputs, execution_count=1)
    cells = [
        code,
        new_markdown_cell(f"# Answer\n\n{script}"),
        new_markdown_cell(f'<img src=x onerror="{MARK}()">'),
        new_markdown_cell(f"[click](javascript:{MARK}())"),
        new_markdown_cell(f"[click](&#106;avascript:{MARK}())"),
        new_markdown_cell(f"<javascript:{MARK}()>"),
        new_markdown_cell(f"$\\href{{javascript:{MARK}()}}{{click}}$"),
        new_raw_cell(script, metadata={"raw_mimetype": "text/html"}),
        new_raw_cell(script),
    ]
    notebook = new_notebook(cells=cells)
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {MARK: {}}}}
    if forged:
        notebook.cells[0].outputs[7]["execution_count"] = f"<script>{MARK}</script>"
        notebook.cells[0].outputs[8]["name"] = f'stdout"><script>{MARK}</script>'
        notebook.cells[0]["execution_count"] = f"<script>{MARK}</script>"
    return notebook


class Page(HTMLParser):
    """What a browser would act on in a page: event handlers, script URLs, script bodies."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.handlers: list[str] = []
        self.urls: list[str] = []
        self.scripts: list[str] = []
        self.tags: set[str] = set()
        self._in_script = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append(f"<{tag} {name}={value}>")
            if (
                name in ("href", "src", "action", "formaction", "xlink:href")
                and value
                and not _harmless(value)
            ):
                self.urls.append(f"<{tag} {name}={value}>")
        self._in_script = tag == "script"

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False


def _harmless(url: str) -> bool:
    kept = ("http:", "https:", "#", "mailto:", "data:image/png;base64,", "data:image/jpeg;base64,")
    return url.startswith(kept) or ":" not in url.split("/")[0]


def render(notebook: NotebookNode, *, sanitize: bool) -> str:
    """The page nbconvert makes, configured as grader/nbgrader_config.py configures it (or not at all)."""
    exporter = exporter_class(template_name="classic")
    if sanitize:
        exporter.sanitize_html = True
        exporter.register_preprocessor(SanitizeNotebook(), enabled=True)
    body, _ = exporter.from_notebook_node(copy.deepcopy(notebook))
    return str(body)


def test_unsanitized_the_hostile_notebook_runs_its_script() -> None:
    """The control: nbconvert's defaults render the student's script live (this is what to stop)."""
    page = Page(render(hostile_notebook(forged=False), sanitize=False))
    assert page.handlers and any(MARK in s for s in page.scripts), "the hostile notebook is not hostile"


@pytest.mark.parametrize("autograded", [True, False], ids=["autograded", "rendered-only"])
def test_the_rendered_page_runs_nothing_the_student_wrote(autograded: bool) -> None:
    """No handler, no script URL, no script with the student's text -- autograded, or only rendered."""
    notebook = hostile_notebook(forged=autograded)
    if autograded:  # the autograde pipeline's step; the formgrader's exporter then runs it again
        SanitizeNotebook().preprocess(notebook, {})
    page = Page(render(notebook, sanitize=True))
    baseline = Page(render(new_notebook(cells=[new_code_cell("print('hello')")]), sanitize=True))
    assert not page.handlers, page.handlers
    assert not page.urls, page.urls
    assert not [s for s in page.scripts if MARK in s], [s for s in page.scripts if MARK in s]
    assert len(page.scripts) == len(baseline.scripts), "the student's notebook added script elements"
    assert page.tags - baseline.tags <= {"img", "em", "h1", "a", "p", "code"}, page.tags - baseline.tags


def test_what_the_student_wrote_is_still_there_to_read() -> None:
    """Sanitized is not deleted: the instructor still reads the text, as text, and sees why."""
    notebook = hostile_notebook()
    SanitizeNotebook().preprocess(notebook, {})
    markdown = [c for c in notebook.cells if c.cell_type == "markdown"]
    assert len(markdown) == 8, "raw cells become text too"
    assert all("shows this cell as text" in c.source and MARK in c.source for c in markdown), markdown
    plain = [o["data"].get("text/plain", "") for o in notebook.cells[0].outputs if "data" in o]
    assert any("removed output of type text/html" in p for p in plain), plain
    assert notebook.cells[0].outputs[-1]["text"].startswith("<script>"), (
        "stream text is kept (it renders escaped)"
    )


def test_grades_are_untouched_errors_and_honest_markdown_stay() -> None:
    """Error outputs (which decide a test cell's grade) and the instructor's markdown pass unchanged."""
    error = new_output("error", ename="AssertionError", evalue="wrong", traceback=["AssertionError: wrong"])
    intro = (
        "# Exercise 1\n\nRun `docker run -p 8888:8888 IMAGE` and see [the docs](https://docs.docker.com/).\n"
    )
    notebook = new_notebook(cells=[new_markdown_cell(intro), new_code_cell("assert False", outputs=[error])])
    SanitizeNotebook().preprocess(notebook, {})
    assert notebook.cells[0].source == intro
    assert notebook.cells[1].outputs == [error]


def test_the_courses_own_notebooks_are_left_as_they_are() -> None:
    """Every markdown cell of grader/source stays markdown: the sanitizer only touches hostile text."""
    sources = sorted((Path(__file__).resolve().parents[2] / "grader" / "source").glob("*/*.ipynb"))
    assert sources, "no course notebooks found"
    for path in sources:
        notebook = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
        for cell in notebook.cells:
            if cell.cell_type == "markdown":
                assert markdown_is_inert(cell.source), f"{path.name}: {cell.source[:200]}"


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://docs.docker.com/", True),
        ("../exercises/ex01.ipynb", True),
        ("#question-2", True),
        ("mailto:teacher@example.org", True),
        ("javascript:alert(1)", False),
        ("JaVaScRiPt:alert(1)", False),
        (" java\tscript:alert(1)", False),
        ("&#106;avascript:alert(1)", False),
        ("data:text/html;base64,PHNjcmlwdD4=", False),
        ("vbscript:msgbox", False),
        ("weird:thing", False),
    ],
)
def test_only_links_a_browser_cannot_run_are_kept(url: str, safe: bool) -> None:
    """http(s), mailto and relative links are safe; every other scheme, however spelled, is not."""
    assert safe_url(url) is safe


def test_text_shown_as_code_cannot_close_its_own_fence() -> None:
    """A cell full of fences and HTML stays one code block when shown as text."""
    source = "~~~\n</code></pre><script>x</script>\n~~~~~\n<img src=x onerror=y>"
    shown = as_text(source)
    assert markdown_is_inert(shown), shown
    page = Page(render(new_notebook(cells=[new_markdown_cell(shown)]), sanitize=False))
    assert not page.handlers and not any(s == "x" for s in page.scripts), page.handlers


def test_the_course_config_renders_through_the_sanitizer() -> None:
    """grader/nbgrader_config.py gives every HTMLExporter (formgrader, feedback) the sanitizer and bleach."""
    from traitlets.config.loader import PyFileConfigLoader

    grader = Path(__file__).resolve().parents[2] / "grader"
    config = PyFileConfigLoader("nbgrader_config.py", path=str(grader)).load_config()
    exporter = exporter_class(config=config, template_name="classic")
    assert exporter.sanitize_html is True
    assert any(isinstance(p, SanitizeNotebook) for p in exporter._preprocessors), exporter._preprocessors
    page = Page(str(exporter.from_notebook_node(hostile_notebook(forged=False))[0]))
    assert not page.handlers and not [s for s in page.scripts if MARK in s], page.handlers
