"""The lesson notebooks: stored clean, listed in the README, and runnable top to bottom on a real engine.

Each lesson (notebooks/NN-*.ipynb, discovered by glob so a new lesson is picked up) is executed
with nbclient exactly as "Run All" would: no widget clicks, per-cell timeout, cwd = notebooks/.
A lesson passes when no cell fails, no output is an error or a traceback on stderr, and no course
container it started is left once its last cell (``end_lesson()``) has run.

Executed copies are written to $PORTBINDING_NOTEBOOK_OUTPUT (default: pytest's tmp_path), never
into notebooks/.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tests.support.checkout import REPO

NOTEBOOKS = REPO / "notebooks"
README = NOTEBOOKS / "README.md"
LESSONS = sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
ALL_NOTEBOOKS = sorted(p for p in NOTEBOOKS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)

CELL_TIMEOUT_S = 180
KERNEL = "python3"
COURSE_FILTER = {"label": "portbinding.course=port-binding-lab"}
SESSION_LABEL = "portbinding.session"
OWNER_LABEL = "portbinding.owner"
# Words that mark a failure when they appear in a cell's stderr.
STDERR_ALARMS = ("Traceback", "Error")

# Run in the lesson's own kernel after its last cell: the session ids of every Engine the lesson
# created (lesson_engine() and any other), so only *its* containers are judged -- other people's
# course containers on a shared engine are none of this test's business.
SESSIONS_PROBE = """
import gc as _gc, json as _json
from portbinding.engine import Engine as _Engine
_sessions = {o.session for o in _gc.get_objects() if isinstance(o, _Engine)}
print("PORTBINDING_SESSIONS=" + _json.dumps(sorted(_sessions)))
"""


def _ids(paths: list[Path]) -> list[str]:
    return [path.stem for path in paths]


# nbformat has no type hints: one typed door to each function used.
def _read(path: Path) -> Any:
    return nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]


def _write(notebook: Any, path: Path) -> None:
    nbformat.write(notebook, path)  # type: ignore[no-untyped-call]


def _new_code_cell(source: str) -> Any:
    return nbformat.v4.new_code_cell(source)  # type: ignore[no-untyped-call]


# ------------------------------------------------------------------------------ stored notebooks


def test_there_are_lessons() -> None:
    """notebooks/ holds numbered lessons for the glob to find."""
    assert LESSONS, f"no notebooks/NN-*.ipynb found in {NOTEBOOKS}"


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=_ids(ALL_NOTEBOOKS))
def test_notebook_is_stored_without_outputs_and_with_the_python3_kernel(path: Path) -> None:
    """Every stored notebook is valid nbformat 4, has no outputs or counts, and names the python3 kernel."""
    notebook = _read(path)
    nbformat.validate(notebook)
    assert notebook.nbformat == 4, f"{path.name} is nbformat {notebook.nbformat}, expected 4"
    kernelspec = notebook.metadata.get("kernelspec", {})
    assert kernelspec.get("name") == KERNEL, f"{path.name}: kernelspec {kernelspec}, JupyterLab would ask"
    assert kernelspec.get("language") == "python", f"{path.name}: kernelspec {kernelspec}"
    language = notebook.metadata.get("language_info", {}).get("name")
    assert language == "python", f"{path.name}: language_info names {language!r}, expected python"
    assert "widgets" not in notebook.metadata, f"{path.name} stores widget state; strip it"
    dirty = [
        index
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, f"{path.name}: code cells {dirty} have outputs or execution counts; strip them"


@pytest.mark.parametrize("path", LESSONS, ids=_ids(LESSONS))
def test_lesson_ends_with_a_cleanup_cell(path: Path) -> None:
    """The last code cell of every lesson calls end_lesson(), so Run All leaves nothing running."""
    notebook = _read(path)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code_cells, f"{path.name} has no code cells"
    assert "end_lesson()" in code_cells[-1].source, (
        f"{path.name}: the last code cell is {code_cells[-1].source!r}, expected it to call end_lesson()"
    )


def test_readme_mentions_every_lesson() -> None:
    """notebooks/README.md names every lesson file."""
    assert README.exists(), f"{README} is missing"
    text = README.read_text(encoding="utf-8")
    missing = [path.name for path in LESSONS if path.name not in text]
    assert not missing, f"notebooks/README.md does not mention {missing}"


# ------------------------------------------------------------------------------ executed lessons


@pytest.fixture
def output_dir(tmp_path: Path) -> Path:
    """Where executed copies go: $PORTBINDING_NOTEBOOK_OUTPUT or the test's tmp_path."""
    chosen = Path(os.environ.get("PORTBINDING_NOTEBOOK_OUTPUT") or tmp_path)
    chosen.mkdir(parents=True, exist_ok=True)
    assert chosen.resolve() != NOTEBOOKS.resolve(), "executed notebooks must never be written into notebooks/"
    return chosen


@pytest.mark.parametrize("lesson", LESSONS, ids=_ids(LESSONS))
def test_lesson_runs_top_to_bottom_and_leaves_no_container(
    lesson: Path, docker_client: docker.DockerClient, output_dir: Path
) -> None:
    """Run All on the real engine: no cell fails, no traceback is printed, no course container is left."""
    notebook = _read(lesson)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name=KERNEL,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    before = _course_container_ids(docker_client)
    failure: CellExecutionError | None = None
    leftovers: list[str] = []
    started = time.monotonic()
    try:
        with client.setup_kernel():
            try:
                _run_all(client, notebook)
            except CellExecutionError as error:
                failure = error
            finally:
                # While the kernel is alive: its atexit cleanup must not hide what the cells left.
                sessions = _kernel_sessions(client, notebook)
                leftovers = _remove_leftovers(docker_client, before, sessions)
    finally:
        executed = output_dir / lesson.name
        _write(notebook, executed)
    elapsed = time.monotonic() - started

    if failure is not None:
        pytest.fail(
            f"{lesson.name} failed after {elapsed:.0f} s (executed copy: {executed}):\n"
            f"{_course_messages(notebook)}{failure}"
            + (f"\nIt also left course containers behind (now removed): {leftovers}" if leftovers else ""),
            pytrace=False,
        )
    problems = list(_output_problems(notebook))
    assert not problems, f"{lesson.name} printed errors (executed copy: {executed}):\n" + "\n".join(problems)
    assert not leftovers, f"{lesson.name} left course containers behind (now removed): {leftovers}"


def _run_all(client: NotebookClient, notebook: Any) -> None:
    """What NotebookClient.execute() does inside its kernel context, minus starting the kernel."""
    client.reset_execution_trackers()
    for index, cell in enumerate(notebook.cells):
        client.execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
    client.set_widgets_metadata()


def _kernel_sessions(client: NotebookClient, notebook: Any) -> set[str] | None:
    """The Engine sessions of the lesson's kernel, or None if the kernel cannot tell any more."""
    probe = _new_code_cell(SESSIONS_PROBE)
    notebook.cells.append(probe)
    try:
        client.execute_cell(probe, len(notebook.cells) - 1, execution_count=None)
    except Exception:  # a dead or stuck kernel: fall back to the owner label
        return None
    finally:
        notebook.cells.pop()
    for output in probe.outputs:
        for line in str(output.get("text", "")).splitlines():
            if line.startswith("PORTBINDING_SESSIONS="):
                return set(json.loads(line.partition("=")[2]))
    return None


def _course_container_ids(client: docker.DockerClient) -> set[str]:
    return {c.id for c in client.containers.list(all=True, filters=COURSE_FILTER)}


def _remove_leftovers(client: docker.DockerClient, before: set[str], sessions: set[str] | None) -> list[str]:
    """Remove the course containers this lesson created and left; return their names."""
    leftovers = []
    for container in client.containers.list(all=True, filters=COURSE_FILTER):
        if container.id in before:
            continue
        labels = container.labels
        if sessions is not None:
            ours = labels.get(SESSION_LABEL) in sessions
        else:
            ours = labels.get(OWNER_LABEL) == "lesson"
        if not ours:
            continue
        leftovers.append(f"{container.name} ({container.status})")
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass
    return leftovers


def _output_problems(notebook: Any) -> Iterator[str]:
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        for output in cell.outputs:
            if output.output_type == "error":
                yield f"cell {index}: {output.ename}: {output.evalue}"
            elif output.output_type == "stream" and output.name == "stderr":
                text = str(output.text)
                if any(alarm in text for alarm in STDERR_ALARMS):
                    yield f"cell {index} wrote to stderr: {text.strip()[:1500]}"


def _course_messages(notebook: Any) -> str:
    """The course's own error messages (shown as HTML instead of a traceback) in the executed cells."""
    import html
    import re

    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            markup = str(output.get("data", {}).get("text/html", ""))
            if "pbl-msg-error" in markup:
                found.append(html.unescape(re.sub(r"<[^>]+>", "", markup)).strip())
    return "".join(f"course error shown: {text}\n" for text in found)
