"""The lesson notebooks: stored clean, listed in the README, and runnable top to bottom on a real engine.

Each lesson (notebooks/NN-*.ipynb, discovered by glob so a new lesson is picked up) is executed
with nbclient exactly as "Run All" would: no widget clicks, per-cell timeout, cwd = notebooks/.
A lesson passes when no cell fails, no output is an error or a traceback on stderr, and no course
container it started is left once its last cell (``end_lesson()``) has run.

Lessons 02-05 ask the learner: predictions, commands, fixes, a commitment. Their test answers
every question (tests/notebooks/lesson_plans.py: some right, some wrong) and checks the lesson's
reaction to each; 04 and 05 end in a challenge, which a learner at a terminal (tests/support/
learner.py) solves with docker commands -- the widget must turn green and the record say the
cause was committed right, with no hint.

Executed copies are written to $PORTBINDING_NOTEBOOK_OUTPUT (default: pytest's tmp_path), never
into notebooks/. PORTBINDING_LESSON_SEED replays a challenge seed printed by a failure.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tests.notebooks.lesson_plans import (
    CHALLENGE_CELL,
    LEARNER_CELLS,
    MARKS,
    STARTUP_DELAY_S,
    Step,
    lesson_plan,
)
from tests.support.challenge import shell
from tests.support.checkout import REPO
from tests.support.learner import Decision, decide, look

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
    lesson: Path,
    docker_client: docker.DockerClient,
    output_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Run All on the real engine -- with the learner's answers where the lesson asks, and its
    closing challenge solved by hand -- no cell fails, no traceback is printed, the lesson reacts
    to each answer as it should, and no course container is left."""
    # The challenge records of this run go to the test's own folder, never a learner's.
    monkeypatch.setenv("PORTBINDING_DATA_DIR", str(tmp_path / "records"))
    notebook = _read(lesson)
    plan = lesson_plan(lesson.stem)
    steps = plan.answer(notebook) if plan else []
    seed = _seed_challenge(notebook) if plan and plan.challenge else None
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name=KERNEL,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    before = _course_container_ids(docker_client)
    failure: BaseException | None = None
    leftovers: list[str] = []
    run = Run()
    started = time.monotonic()
    try:
        with client.setup_kernel():
            try:
                _run_all(client, notebook, run)
            except (CellExecutionError, AssertionError) as error:
                failure = error
            finally:
                # While the kernel is alive: its atexit cleanup must not hide what the cells left.
                sessions = _kernel_sessions(client, notebook)
                leftovers = _remove_leftovers(docker_client, before, sessions)
                if run.solved is not None:  # what the learner started by hand, under the challenge's name
                    shell(f"docker rm -f {run.solved.told['container']}")
    finally:
        executed = output_dir / lesson.name
        _write(notebook, executed)
    elapsed = time.monotonic() - started
    seeded = f" (challenge seed {seed})" if seed is not None else ""

    if failure is not None:
        pytest.fail(
            f"{lesson.name}{seeded} failed after {elapsed:.0f} s (executed copy: {executed}):\n"
            f"{_course_messages(notebook)}{failure}"
            + (f"\nIt also left course containers behind (now removed): {leftovers}" if leftovers else ""),
            pytrace=False,
        )
    problems = list(_output_problems(notebook))
    assert not problems, f"{lesson.name} printed errors (executed copy: {executed}):\n" + "\n".join(problems)
    assert not leftovers, f"{lesson.name} left course containers behind (now removed): {leftovers}"
    if plan:
        _check_reactions(lesson.name, notebook, steps, executed)
    if plan and plan.challenge:
        _check_challenge_record(lesson.name + seeded, notebook, run.solved, executed)


@dataclass
class Run:
    """What happened during one lesson run: the closing challenge, once the learner solved it."""

    solved: Solved | None = None


@dataclass(frozen=True)
class Solved:
    """The closing challenge as the learner met it, and what they decided."""

    told: dict[str, Any]
    decision: Decision


def _run_all(client: NotebookClient, notebook: Any, run: Run) -> None:
    """What NotebookClient.execute() does inside its kernel context, minus starting the kernel --
    and, right after the cell that shows a lesson's challenge, the learner solving it by hand."""
    client.reset_execution_trackers()
    index = 0
    while index < len(notebook.cells):
        cell = notebook.cells[index]
        client.execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
        index += 1
        if cell.cell_type == "code" and cell.source.startswith(CHALLENGE_CELL):
            run.solved = _solve_by_hand(client, notebook, index)
            index = notebook.cells.index(cell) + 1 + len(LEARNER_CELLS)
    client.set_widgets_metadata()


def _inject(client: NotebookClient, notebook: Any, at: int, source: str) -> str:
    """Run ``source`` as a new cell at position ``at`` (it stays in the executed copy); its text."""
    cell = _new_code_cell(source)
    notebook.cells.insert(at, cell)
    client.execute_cell(cell, at, execution_count=client.code_cells_executed + 1)
    return _cell_text(cell)


def _solve_by_hand(client: NotebookClient, notebook: Any, at: int) -> Solved:
    """Start the challenge (a click), read the task, climb the ladder in a terminal, commit (two
    choices and a click), fix it with docker commands, and wait for the widget to turn green."""
    start, commit, wait = LEARNER_CELLS
    text = _inject(client, notebook, at, start)
    assert "TOLD " in text, f"the challenge did not start: {text[-800:]}"
    told = json.loads(text.split("TOLD ", 1)[1].splitlines()[0])
    decision = decide(told, look(told))
    _inject(client, notebook, at + 1, commit.format(layer=decision.layer, cause=decision.cause))
    for line in decision.fix:
        done = shell(line)
        assert done.returncode == 0, f"the learner's fix {line!r} failed: {done.stdout}{done.stderr}"
    _inject(client, notebook, at + 2, wait.format(timeout=STARTUP_DELAY_S + 90))
    return Solved(told, decision)


def _seed_challenge(notebook: Any) -> int:
    """Seed the lesson's challenge (printed with any failure, so a run can be replayed) and make a
    slow start short: its fix is to wait, and a test need not wait minutes."""
    seed = int(os.environ.get("PORTBINDING_LESSON_SEED") or secrets.randbelow(10**6))
    cells = [c for c in notebook.cells if c.cell_type == "code" and c.source.startswith(CHALLENGE_CELL)]
    assert len(cells) == 1, f"expected one cell starting with {CHALLENGE_CELL!r}, found {len(cells)}"
    cells[0].source = cells[0].source.replace(
        "ChallengeWidget(", f"ChallengeWidget(seed={seed}, startup_delay={STARTUP_DELAY_S}, ", 1
    )
    return seed


def _cell_text(cell: Any) -> str:
    """Everything a cell showed as text: its streams and the plain-text form of its results."""
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(str(output.get("text", "")))
        elif output.get("output_type") in ("execute_result", "display_data"):
            parts.append(str(output.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def _all_text(notebook: Any) -> str:
    return "\n".join(_cell_text(cell) for cell in notebook.cells if cell.cell_type == "code")


def _check_reactions(name: str, notebook: Any, steps: list[Step], executed: Path) -> None:
    """The lesson reacted to each answer in order: right where it was right, not where it was not,
    in its own words."""
    text = _all_text(notebook)
    verdicts = [
        verdict for line in text.splitlines() for mark, verdict in MARKS.items() if line.startswith(mark)
    ]
    expected = [step.verdict for step in steps]
    assert verdicts == expected, (
        f"{name}: the lesson's reactions were {verdicts}, expected {expected} for the answers "
        f"{[step.answers for step in steps]} (executed copy: {executed})"
    )
    for step in steps:
        for words in step.says:
            assert words in text, f"{name}: after {step.answers} the lesson never said {words!r} ({executed})"


def _check_challenge_record(name: str, notebook: Any, solved: Solved | None, executed: Path) -> None:
    """The challenge turned green, and the lesson's record shows the right cause, committed unassisted."""
    assert solved is not None, f"{name}: the challenge cell never ran ({executed})"
    text = _all_text(notebook)
    assert "VERDICT" in text, f"{name}: the widget never turned solved ({executed})"
    record = next((line for line in text.splitlines() if line.startswith("The cause was ")), "")
    assert f"you committed {solved.decision.cause} -- right" in record, (
        f"{name}: the learner committed {solved.decision.cause}; the record says {record!r} ({executed})"
    )
    assert "Hints used: 0." in text, f"{name}: the challenge was meant to be solved unassisted ({executed})"


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
    """Remove the course containers (and networks) this lesson created and left; return their names."""
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
    # Lesson 07 makes networks too (labelled with the lesson's session): none may outlive it.
    for network in client.networks.list(filters=COURSE_FILTER):
        if sessions is None or (network.attrs.get("Labels") or {}).get(SESSION_LABEL) not in sessions:
            continue
        leftovers.append(f"network {network.name}")
        try:
            network.remove()
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
