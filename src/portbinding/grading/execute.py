"""nbgrader's Execute step, run in the grading sandbox, with the grader's own rules on top.

Configured in grader/nbgrader_config.py in place of nbgrader's ``Execute``, so *every*
``nbgrader autograde`` of this course -- by hand or through ``portbinding grade`` -- runs
learner code in a sandbox (see ``kernel``/``sandbox``/``jail``). On top of executing:

* Output is capped per notebook: a notebook that prints gigabytes is stopped, not buffered.
* A notebook that breaks a rule (engine access, a resource limit, a cell that had to be
  stopped, a kernel that died) is graded zero: every autograded test cell gets an error
  output naming the reason, and a note at the top of the notebook says it in the feedback.
* A test cell that calls a check (``check_fix``/``check_cause``/``check_config``/``check_image``) passes only
  if the door really ran a check during that cell, with the settings the cell's own source
  gives it, and every such check passed (``crosscheck``). Learner code shares the kernel with
  the tests and could replace ``check_fix`` by ``lambda *a: True``, or by a wrapper that asks
  the door with looser settings; the door's own record cannot be forged from inside the sandbox.
* The grader's own failures (the sandbox could not be built, its door broke, the engine
  stopped answering) are never the notebook's zero: ``GraderFault`` is raised instead, so
  nbgrader fails that submission loudly and records no grade for it, and ``portbinding
  grade`` reports it as *not gradable -- regrade*, leaving the previous grade alone.
* The sandbox's work folder gets the submission's files only if each is a regular file of
  the same size in the submitted folder (or the assignment's source folder): nbgrader copies
  submitted/ into autograded/ as root, through symlinks.
* With ``PORTBINDING_GRADING_RECORDS`` set (by ``portbinding grade``), a JSON record of the
  checks and violations is written there for the class report.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from nbclient.exceptions import CellExecutionComplete, CellTimeoutError, DeadKernelError
from nbclient.util import run_sync
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute
from nbgrader.utils import is_grade, is_solution
from traitlets import Integer

from portbinding.errors import PortBindingError
from portbinding.grading import crosscheck
from portbinding.grading.kernel import SandboxedKernelManager
from portbinding.grading.sandbox import SandboxUnavailable

RECORDS_ENV = "PORTBINDING_GRADING_RECORDS"
NOTE_MARK = "portbinding-grading-note"
# A test cell naming any door check is cross-checked (crosscheck.CHECKS is the one list of them).
_CALLS_CHECK = re.compile(r"\b(" + "|".join(crosscheck.CHECKS) + r")\s*\(")


class GraderFault(PortBindingError):
    """The grader failed on this notebook through no fault of the notebook: it must be graded again."""


class SandboxedExecute(Execute):  # type: ignore[misc]  # nbgrader is untyped
    """Execute each notebook in a fresh grading sandbox and apply the grader's rules."""

    max_output_bytes = Integer(
        2_000_000, help="Most bytes of output a notebook may produce while graded; more stops it."
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        # nbgrader's Execute forces its own kernel manager class unless one is given.
        kwargs.setdefault("kernel_manager_class", SandboxedKernelManager)
        super().__init__(**kwargs)
        self._reset()

    def _reset(self) -> None:
        self._resources: Any = None
        self._problems: list[dict[str, str]] = []
        self._stopped: str | None = None
        self._output_bytes = 0
        self._spans: dict[int, tuple[float, float]] = {}
        self._manager: SandboxedKernelManager | None = None

    def create_kernel_manager(self) -> Any:
        manager = super().create_kernel_manager()
        self._manager = manager if isinstance(manager, SandboxedKernelManager) else None
        if self._manager is not None:
            self._manager.copy_check_against = _submission_folders(self, self._resources)
        return manager

    async def async_start_new_kernel_client(self) -> Any:
        kc = await super().async_start_new_kernel_client()
        for channel in (kc.iopub_channel, kc.shell_channel):
            channel.get_msg = self._well_formed(channel.get_msg)
        return kc

    # nbclient's sync entry point wraps *its* coroutine function, not an override: wrap ours.
    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    def _well_formed(self, get_msg: Callable[..., Awaitable[dict[str, Any]]]) -> Callable[..., Any]:
        """``get_msg`` that never hands nbclient a malformed message: it stops the notebook instead.

        The kernel is the learner's and signs whatever it sends (its connection file holds the
        key): a message without a msg_type, or whose parent header is a list, crashed nbclient,
        and the submission became "not gradable -- regrade" (the grader's fault) for ever.
        """

        async def checked(*args: Any, **kwargs: Any) -> dict[str, Any]:
            while True:
                problem: str | None
                try:
                    msg = await get_msg(*args, **kwargs)
                except (KeyError, TypeError, ValueError, AttributeError) as error:
                    problem = type(error).__name__
                else:
                    problem = _malformed(msg)
                    if problem is None:
                        return msg
                self._malformed_message(problem)

        return checked

    def _malformed_message(self, problem: str) -> None:
        if self._stopped is None:
            self._stop(
                "protocol",
                f"The notebook's kernel sent the grader a malformed message ({problem}) and was stopped.",
            )

    def preprocess(self, nb: NotebookNode, resources: Any = None, km: Any = None) -> tuple[NotebookNode, Any]:
        self._reset()
        self._resources = resources
        fault: str | None = None
        try:
            nb, resources = super().preprocess(nb, resources, km)
        except (DeadKernelError, CellTimeoutError) as error:
            self._stop("kernel_died", f"The notebook's Python kernel stopped unexpectedly ({error}).")
        except SandboxUnavailable as error:
            fault = f"{error.message} ({error.hint})" if error.hint else error.message
        except RuntimeError:
            # The kernel never answered: the grader's problem if its sandbox could not be built.
            self._close_sandbox()
            if self._fault() is None:
                raise
        finally:
            violations = self._close_sandbox()
        fault = fault or self._fault()
        if fault is not None:
            _write_record(nb, resources, [], [], {}, fault=fault)
            raise GraderFault(
                f"Not gradable -- regrade: the grader failed on this notebook ({fault}). This is not the "
                "student's doing, so no grade was recorded for it.",
                hint="fix the grading machine (see the message), then grade this submission again",
            )
        own = self._problems
        if violations:  # the sandbox's reason is the real one; "the kernel died" only repeats it
            own = [p for p in own if p["code"] != "kernel_died"]
        problems = _unique([*violations, *own])
        checks = self._checks()
        _write_record(nb, resources, problems, checks, self._spans)  # before a note cell shifts the indices
        if problems:
            _zero(nb, problems)
        else:
            _cross_check(nb, checks, self._spans)
        return nb, resources

    def preprocess_cell(self, cell: NotebookNode, resources: Any, index: int) -> tuple[NotebookNode, Any]:
        if self._stopped is not None:
            if cell.cell_type == "code":
                cell.outputs = [
                    error_output("NotRun", f"Not run: grading stopped before this cell. {self._stopped}")
                ]
            return cell, resources
        started = time.monotonic()
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            if not self._problems:
                self._stop(
                    "kernel_died",
                    "The notebook's Python kernel died while running a cell (it was killed "
                    "by a resource limit, or exited).",
                )
            cell.outputs = [*cell.get("outputs", []), error_output("KernelDied", self._stopped or "")]
        except CellTimeoutError:
            self._stop(
                "timeout",
                f"A cell ran longer than {self.timeout} s and could not be interrupted, so "
                "grading stopped the notebook (an endless loop?).",
            )
            cell.outputs = [*cell.get("outputs", []), error_output("CellTimeoutError", self._stopped or "")]
        finally:
            self._spans[index] = (started, time.monotonic())
        if self._stopped is None and any(
            o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", [])
        ):
            self._stop(
                "timeout", f"A cell ran longer than {self.timeout} s and was stopped (an endless loop?)."
            )
        sandbox = self._manager.sandbox if self._manager is not None else None
        if self._stopped is None and sandbox is not None and sandbox.violations():
            self._stopped = "The notebook broke a grading rule (see the note at the top)."
        return cell, resources

    def process_message(
        self, msg: dict[str, Any], cell: NotebookNode, cell_index: int
    ) -> NotebookNode | None:
        # Every message the kernel sends counts, not only the outputs nbclient keeps as such: error
        # tracebacks, metadata, comm (widget) state and buffers all stayed in the grader's memory
        # (50 MB of "error" messages went into the notebook past a 2 MB cap).
        size = _message_bytes(msg)
        if msg.get("msg_type") in ("status", "execute_input"):  # the kernel names the type: these
            size = max(0, size - len(str(cell.get("source", ""))) - 1_000)  # count beyond the cell's source
        if size:
            self._output_bytes += size
            if self._output_bytes > self.max_output_bytes:
                if self._stopped is None:
                    self._stop(
                        "output",
                        f"The notebook printed more than {self.max_output_bytes // 1_000_000} MB of output "
                        "and was stopped (output is capped while grading).",
                    )
                return None  # dropped: memory in the grader stays bounded
        try:
            shown: NotebookNode | None = super().process_message(msg, cell, cell_index)
        except CellExecutionComplete:
            raise
        except (KeyError, TypeError, AttributeError, ValueError) as error:  # see _well_formed
            self._malformed_message(f"{str(msg.get('msg_type'))[:40]!r}: {type(error).__name__}")
            return None
        return shown

    def _stop(self, code: str, message: str) -> None:
        self._problems.append({"code": code, "message": message})
        self._stopped = message
        if self._manager is not None:
            self._manager.kill_sandbox()

    def _close_sandbox(self) -> list[dict[str, Any]]:
        manager = self._manager
        if manager is None or manager.sandbox is None:
            return []
        return manager.sandbox.close()  # idempotent; normally done at kernel shutdown already

    def _fault(self) -> str | None:
        manager = self._manager
        if manager is None or manager.sandbox is None:
            return None
        return manager.sandbox.fault()

    def _checks(self) -> list[dict[str, Any]]:
        manager = self._manager
        if manager is None or manager.sandbox is None:
            return []
        return manager.sandbox.ledger.checks()


def _malformed(msg: Any) -> str | None:
    """What is wrong with a message's shape for nbclient, or None."""
    if not isinstance(msg, dict) or not isinstance(msg.get("msg_type"), str):
        return "no message type"
    for part in ("header", "parent_header", "metadata", "content"):
        if not isinstance(msg.get(part), dict):
            return f"its {part} is no mapping"
    return None


def _message_bytes(msg: dict[str, Any]) -> int:
    """About how much memory a kernel message takes: its content and metadata as JSON, its buffers."""
    size = len(json.dumps([msg.get("content"), msg.get("metadata")], default=repr))
    return size + sum(len(buffer) for buffer in msg.get("buffers") or [])


def error_output(name: str, text: str) -> NotebookNode:
    return NotebookNode(  # type: ignore[no-untyped-call]
        output_type="error", ename=name, evalue=text, traceback=[f"{name}: {text}"]
    )


def _unique(problems: list[dict[str, Any]]) -> list[dict[str, str]]:
    seen: set[str] = set()
    unique = []
    for problem in problems:
        if problem["code"] not in seen:
            seen.add(problem["code"])
            unique.append({"code": str(problem["code"]), "message": str(problem["message"])})
    return unique


def test_cells(nb: NotebookNode) -> list[tuple[int, NotebookNode]]:
    """The autograded test cells: graded code cells that are not the learner's answer."""
    return [
        (i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code" and is_grade(c) and not is_solution(c)
    ]


def _zero(nb: NotebookNode, problems: list[dict[str, str]]) -> None:
    reasons = " ".join(p["message"] for p in problems)
    for _, cell in test_cells(nb):
        cell.outputs = [*cell.get("outputs", []), error_output("GradedZero", reasons)]
    lines = "\n".join(f"- {p['message']}" for p in problems)
    note = NotebookNode(  # type: ignore[no-untyped-call]
        cell_type="markdown",
        metadata={"tags": [NOTE_MARK]},
        source=(
            "**Grading note: this notebook was graded zero.**\n\n"
            + lines
            + "\n\nThe grader runs notebooks in a sandbox with limits; fix the cause and submit again."
        ),
    )
    if "id" in nb.cells[0]:
        note["id"] = NOTE_MARK
    nb.cells.insert(0, note)


def _cross_check(
    nb: NotebookNode, checks: list[dict[str, Any]], spans: dict[int, tuple[float, float]]
) -> None:
    """Fail a test cell the door's record does not vouch for, whatever the kernel claims (see crosscheck)."""
    for index, cell in test_cells(nb):
        if not _CALLS_CHECK.search(str(cell.source)) or index not in spans:
            continue
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            continue  # already failing: nothing to correct
        start, end = spans[index]
        during = [c for c in checks if start <= c["started"] and c["ended"] <= end]
        why = crosscheck.verdict(str(cell.source), during)
        if why is None:
            continue
        cell.outputs = [
            *cell.get("outputs", []),
            error_output(
                "GradingIntegrityError",
                f"This test calls a check, but {why}, so the test is graded as failed (was "
                "check_fix replaced in the notebook?). Next step: keep the course's check functions "
                "as they are, and run the test cell unchanged.",
            ),
        ]


def _submission_folders(execute: Execute, resources: Any) -> list[str]:
    """The submitted folder and the assignment's source folder of the notebook being graded.

    The kernel's files come from nbgrader's autograded folder, which nbgrader filled as root
    through any symlink; only files these folders vouch for reach the sandbox.
    """
    from nbgrader.coursedir import CourseDirectory

    info = (resources or {}).get("nbgrader") or {}
    student, assignment = info.get("student"), info.get("assignment")
    if not student or not assignment:
        return []
    owner: Any = execute
    while owner is not None and not isinstance(getattr(owner, "coursedir", None), CourseDirectory):
        owner = getattr(owner, "parent", None)
    course = owner.coursedir if owner is not None else CourseDirectory(config=execute.config)
    return [
        course.format_path(course.submitted_directory, student, assignment),
        course.format_path(course.source_directory, ".", assignment),
    ]


def _write_record(
    nb: NotebookNode,
    resources: Any,
    problems: list[dict[str, str]],
    checks: list[dict[str, Any]],
    spans: dict[int, tuple[float, float]],
    *,
    fault: str | None = None,
) -> None:
    folder = os.environ.get(RECORDS_ENV)
    if not folder:
        return
    name = str((resources or {}).get("unique_key") or "notebook")
    cells = {}
    for index, cell in test_cells(nb):
        grade_id = str(cell.metadata.get("nbgrader", {}).get("grade_id", index))
        start, end = spans.get(index, (0.0, -1.0))
        cells[grade_id] = [c for c in checks if start <= c["started"] and c["ended"] <= end]
    record = {
        "notebook": name,
        "violations": problems,
        "checks": checks,
        "checks_by_cell": cells,
        "fault": fault,
    }
    path = Path(folder) / f"{Path(name).name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1))


def autograde_preprocessors(execute: str = "portbinding.grading.execute.SandboxedExecute") -> list[str]:
    """nbgrader's autograde steps with ``execute`` as the step that runs the notebook.

    grader/nbgrader_config.py uses the sandboxed one; the grading benchmark swaps nbgrader's
    own ``Execute`` back in for its baseline -- one list, so the two cannot drift apart.
    """
    return [
        execute,
        "portbinding.grading.sanitize.SanitizeNotebook",  # nothing the student wrote stays live
        "nbgrader.preprocessors.IgnorePattern",
        "nbconvert.preprocessors.ClearMetadataPreprocessor",
        "nbgrader.preprocessors.LimitOutput",
        "nbgrader.preprocessors.SaveAutoGrades",
        "nbgrader.preprocessors.AssignLatePenalties",
        "nbgrader.preprocessors.CheckCellMetadata",
    ]
