"""``portbinding report``: how the class did on an assignment.

Pass rate per question (an autograded test cell passes when it earned all its points), the
most common diagnosed causes behind failed checks (from the records ``portbinding grade``
keeps), the rule violations, and a plot of both.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nbgrader.api import Gradebook, MissingEntry

from portbinding.grading.course import Course, CourseError


@dataclass(frozen=True)
class QuestionStat:
    """One autograded test cell across the class."""

    question: str
    points: float
    submissions: int
    passed: int

    @property
    def pass_rate(self) -> float:
        return self.passed / self.submissions if self.submissions else 0.0


@dataclass
class ClassReport:
    """The class's results on one assignment."""

    assignment: str
    submissions: int
    mean_score: float
    max_score: float
    questions: list[QuestionStat]
    causes: list[tuple[str, int]] = field(default_factory=list)
    violations: list[tuple[str, int]] = field(default_factory=list)
    regrade: list[str] = field(default_factory=list)  # the grader failed on these: not graded

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["questions"] = [{**asdict(q), "pass_rate": round(q.pass_rate, 3)} for q in self.questions]
        return data

    def text(self) -> str:
        lines = [
            f"{self.assignment}: {self.submissions} submissions, "
            f"mean {self.mean_score:.1f} / {self.max_score:g}",
            "",
            f"{'question':32} {'points':>6} {'passed':>9} {'rate':>6}",
        ]
        for q in self.questions:
            lines.append(
                f"{q.question:32} {q.points:>6g} {q.passed:>4}/{q.submissions:<4} {q.pass_rate:>6.0%}"
            )
        lines += ["", "Most common causes behind failed checks:"]
        lines += [f"  {count:>4}  {cause}" for cause, count in self.causes] or ["  (none)"]
        if self.violations:
            lines += ["", "Submissions graded zero for breaking a grading rule:"]
            lines += [f"  {count:>4}  {code}" for code, count in self.violations]
        if self.regrade:
            lines += ["", "Not gradable -- regrade (the grader failed on these, not the students):"]
            lines += [f"  {student}" for student in self.regrade]
        return "\n".join(lines)


def build_report(course: Course, assignment: str) -> ClassReport:
    """Read the gradebook and the grading records of ``assignment``."""
    try:
        with Gradebook(course.db_url) as gb:
            found = gb.find_assignment(assignment)
            cells = [
                (cell.name, float(cell.max_score))
                for notebook in found.notebooks
                for cell in notebook.grade_cells
                if cell.cell_type == "code"
            ]
            submissions = list(found.submissions)
            scores = [float(s.score) for s in submissions]
            passed: Counter[str] = Counter()
            for submission in submissions:
                for notebook in submission.notebooks:
                    for grade in notebook.grades:
                        if grade.max_score and grade.score >= grade.max_score:
                            passed[grade.name] += 1
            max_score = float(found.max_score)
    except MissingEntry:
        raise CourseError(
            f"The gradebook has no assignment {assignment!r}.",
            hint="generate and grade it first (see grader/README.md)",
        ) from None
    questions = [QuestionStat(name, points, len(submissions), passed[name]) for name, points in cells]
    causes, violations, regrade = _causes(course.records(assignment))
    mean = sum(scores) / len(scores) if scores else 0.0
    return ClassReport(assignment, len(submissions), mean, max_score, questions, causes, violations, regrade)


def _causes(folder: Path) -> tuple[list[tuple[str, int]], list[tuple[str, int]], list[str]]:
    causes: Counter[str] = Counter()
    violations: Counter[str] = Counter()
    regrade: list[str] = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if record.get("status") == "regrade":
            regrade.append(str(record.get("student", path.stem)))
            continue
        codes = set()
        for notebook in record.get("notebooks", []):
            for check in notebook.get("checks", []):
                if not check.get("passed"):
                    causes[str(check.get("cause"))] += 1
            codes |= {str(v.get("code")) for v in notebook.get("violations", [])}
        if record.get("status") == "zero" and not codes:
            codes.add("not_gradable")
        for code in codes:
            violations[code] += 1
    return causes.most_common(), violations.most_common(), regrade


def plot(report: ClassReport, path: Path) -> Path:
    """Pass rate per question and the most common causes, side by side, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 0.45 * max(len(report.questions), 6) + 1.5))
    names = [q.question for q in report.questions][::-1]
    left.barh(names, [100 * q.pass_rate for q in report.questions][::-1], color="#4c78a8")
    left.set_xlim(0, 100)
    left.set_xlabel("submissions with full marks (%)")
    left.set_title(f"{report.assignment}: pass rate per question (n={report.submissions})")
    top = (report.causes + [(f"rule: {code}", count) for code, count in report.violations])[:10][::-1]
    right.barh([cause for cause, _ in top] or ["(none)"], [count for _, count in top] or [0], color="#e45756")
    right.set_xlabel("failed checks / zeroed submissions")
    right.set_title("most common causes")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
