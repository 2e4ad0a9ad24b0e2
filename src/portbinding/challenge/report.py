"""``portbinding progress``: a class's challenge records as the misconception picture.

Three questions an instructor asks, each a table (and a panel of the plot):

- **Which wrong cause do learners commit to, for which real cause?** The confusion table: one
  row per real cause, one column per committed cause (the *first* commitment, made before any
  hint), the diagonal being the right calls.
- **Where do they stall?** Per rung, how many attempts looked at it, the median time spent
  there, and in how many attempts it was the rung they spent longest on. Only attempts made
  through the widget or ``portbinding challenge look`` have rung times; terminal-only attempts
  are counted apart.
- **How many hints does each cause need?** Per real cause: attempts, solved, right first
  calls, mean hints, median time to fix.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from portbinding.challenge.ladder import CHALLENGE_CAUSES, LAYERS, RUNG
from portbinding.errors import PortBindingError

NONE = "(none)"  # no commitment was made


@dataclass(frozen=True)
class RungStat:
    """Time on one rung across the class."""

    layer: str
    looked: int  # attempts that looked at it
    median_s: float | None
    stalled: int  # attempts whose longest rung it was


@dataclass(frozen=True)
class CauseStat:
    """One real cause across the class."""

    cause: str
    attempts: int
    solved: int
    right_first: int  # first commitment named this cause
    mean_hints: float
    median_fix_s: float | None


@dataclass
class ClassReport:
    """The class's challenge records, summarised."""

    folder: str
    attempts: int
    learners: int
    confusion: dict[str, dict[str, int]]  # real cause -> committed cause -> attempts
    rungs: list[RungStat]
    causes: list[CauseStat]
    terminal_only: int  # attempts with no rung times (made in a plain terminal)
    median_commit_s: float | None
    skipped_lines: int = 0
    columns: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def text(self) -> str:
        if not self.attempts:
            return f"No challenge records in {self.folder}."
        lines = [
            f"{self.attempts} attempts by {self.learners} learner(s); median time to commit "
            f"{_secs(self.median_commit_s)}",
            "",
            "Committed (first call, before any hint) vs real cause:",
        ]
        short = {c: _short(c) for c in self.columns}
        lines.append("real \\ committed".ljust(22) + "".join(f"{short[c]:>10}" for c in self.columns))
        for real, row in self.confusion.items():
            lines.append(f"{real:22}" + "".join(f"{row.get(c, 0) or '.':>10}" for c in self.columns))
        lines.append("  (" + "; ".join(f"{short[c]} = {c}" for c in self.columns) + ")")
        lines += ["", "Where learners stall (rung times from the widget and `challenge look`):"]
        lines.append(f"{'rung':30}{'looked':>8}{'median':>10}{'longest in':>12}")
        for stat in self.rungs:
            title = f"{RUNG[stat.layer].number} {RUNG[stat.layer].title}"  # type: ignore[index]
            lines.append(f"{title:30}{stat.looked:>8}{_secs(stat.median_s):>10}{stat.stalled:>12}")
        if self.terminal_only:
            lines.append(f"  {self.terminal_only} attempt(s) made in a plain terminal: no rung times.")
        lines += ["", "Per real cause:"]
        lines.append(f"{'cause':22}{'attempts':>9}{'solved':>8}{'right':>7}{'hints':>7}{'fix (median)':>14}")
        for c in self.causes:
            lines.append(
                f"{c.cause:22}{c.attempts:>9}{c.solved:>8}{c.right_first:>7}{c.mean_hints:>7.1f}"
                f"{_secs(c.median_fix_s):>14}"
            )
        if self.skipped_lines:
            lines.append(f"\n({self.skipped_lines} unreadable line(s) skipped)")
        return "\n".join(lines)


def load_records(folder: Path) -> tuple[list[dict[str, Any]], int]:
    """Every attempt's latest record under ``folder`` (``*.jsonl``, searched deeply), and bad lines."""
    if not folder.is_dir():
        raise PortBindingError(
            f"{folder} is not a folder.",
            hint="collect the learners' challenges.jsonl files (one per learner) into one folder, "
            "and pass that",
        )
    latest: dict[str, dict[str, Any]] = {}
    skipped = 0
    for path in sorted(folder.rglob("*.jsonl")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                key = f"{record['learner']}/{record['attempt']}"
                if record["cause"] not in CHALLENGE_CAUSES:
                    raise ValueError(record["cause"])
            except (ValueError, KeyError, TypeError):
                skipped += 1
                continue
            latest[key] = record  # a later snapshot of the same attempt replaces the earlier
    return list(latest.values()), skipped


def class_report(folder: Path) -> ClassReport:
    """Read ``folder``'s records and summarise them (see the module docstring)."""
    records, skipped = load_records(folder)
    confusion: dict[str, dict[str, int]] = {}
    for cause in CHALLENGE_CAUSES:
        real = [r for r in records if r["cause"] == cause]
        if real:
            confusion[cause] = dict(Counter(str(r.get("committed_cause") or NONE) for r in real))
    used = {c for row in confusion.values() for c in row}
    columns = [c for c in (*CHALLENGE_CAUSES, NONE) if c in used]
    return ClassReport(
        folder=str(folder),
        attempts=len(records),
        learners=len({r["learner"] for r in records}),
        confusion=confusion,
        rungs=_rung_stats(records),
        causes=_cause_stats(records),
        terminal_only=sum(1 for r in records if not r.get("rungs_observed")),
        median_commit_s=_median(
            [r["time_to_commit_s"] for r in records if r.get("time_to_commit_s") is not None]
        ),
        skipped_lines=skipped,
        columns=columns,
    )


def _rung_stats(records: list[dict[str, Any]]) -> list[RungStat]:
    spent: dict[str, list[float]] = defaultdict(list)
    stalled: Counter[str] = Counter()
    for record in records:
        seconds = {k: float(v) for k, v in (record.get("rung_seconds") or {}).items() if k in LAYERS}
        for layer, value in seconds.items():
            spent[layer].append(value)
        if seconds:
            stalled[max(seconds, key=lambda k: seconds[k])] += 1
    return [RungStat(layer, len(spent[layer]), _median(spent[layer]), stalled[layer]) for layer in LAYERS]


def _cause_stats(records: list[dict[str, Any]]) -> list[CauseStat]:
    stats = []
    for cause in CHALLENGE_CAUSES:
        real = [r for r in records if r["cause"] == cause]
        if not real:
            continue
        fixes = [float(r["time_to_fix_s"]) for r in real if r.get("time_to_fix_s") is not None]
        stats.append(
            CauseStat(
                cause=cause,
                attempts=len(real),
                solved=sum(1 for r in real if r.get("solved")),
                right_first=sum(1 for r in real if r.get("cause_right")),
                mean_hints=round(statistics.fmean(int(r.get("hints_used") or 0) for r in real), 2),
                median_fix_s=_median(fixes),
            )
        )
    return stats


def plot(report: ClassReport, path: Path) -> Path:
    """Draw the confusion table, the stall points and the hints per cause into one PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    figure, (left, middle, right) = plt.subplots(
        1, 3, figsize=(17, 5.5), gridspec_kw={"width_ratios": [1.3, 1, 1]}
    )
    rows = list(report.confusion)
    grid = [[report.confusion[r].get(c, 0) for c in report.columns] for r in rows]
    left.imshow(grid or [[0]], cmap="Blues", aspect="auto")
    left.set_xticks(range(len(report.columns)), [_short(c) for c in report.columns], rotation=45, ha="right")
    left.set_yticks(range(len(rows)), rows)
    for y, row in enumerate(grid):
        for x, value in enumerate(row):
            if value:
                left.text(
                    x,
                    y,
                    str(value),
                    ha="center",
                    va="center",
                    color="white" if value > max(map(max, grid)) / 2 else "black",
                )
    left.set_xlabel("committed cause (first call)")
    left.set_title("Committed vs real cause")

    titles = [f"{RUNG[s.layer].number} {RUNG[s.layer].title}" for s in report.rungs]  # type: ignore[index]
    medians = [s.median_s or 0.0 for s in report.rungs]
    bars = middle.barh(titles, medians, color="#4c72b0")
    for bar, stat in zip(bars, report.rungs, strict=True):
        middle.text(
            bar.get_width(),
            bar.get_y() + bar.get_height() / 2,
            f"  longest for {stat.stalled}",
            va="center",
            fontsize=8,
        )
    middle.invert_yaxis()
    middle.set_xlabel("median seconds on the rung")
    middle.set_title("Where learners stall")

    causes = [c.cause for c in report.causes]
    right.bar(causes, [c.mean_hints for c in report.causes], color="#dd8452")
    right.set_xticks(range(len(causes)), causes, rotation=45, ha="right")
    right.set_ylabel("mean hints used (of 3)")
    right.set_ylim(0, 3)
    right.set_title("Hints per cause")
    figure.suptitle(f"Challenges: {report.attempts} attempts by {report.learners} learner(s)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def _secs(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min"


def _short(cause: str) -> str:
    words = {
        "loopback_only": "loopback",
        "wrong_container_port": "wrongport",
        "not_published": "unpubl",
        "still_starting": "starting",
        "wrong_service": "wrongsvc",
        "port_retried": "retried",
        "port_taken": "taken",
        "crashed": "crashed",
        NONE: "none",
    }
    return words.get(cause, cause[:9])
