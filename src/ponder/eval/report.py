"""Summaries of an eval: one row per strategy x family x difficulty (and overall), table and JSON."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ponder.eval.runner import EvalConfig, ItemResult, StrategyEval

if TYPE_CHECKING:
    from ponder.eval.compare import Comparison

ALL = "all"


@dataclass(frozen=True)
class SummaryRow:
    strategy: str
    family: str
    difficulty: str
    num_items: int
    accuracy: float  # 0..1
    pass_at_n: float  # share of problems where any branch was right (0..1)
    mean_distinct_answers: float  # distinct extracted answers per problem, over its branches
    mean_reasoning_tokens: float
    mean_answer_tokens: float
    mean_probe_tokens: float
    mean_generated_tokens: float  # reasoning + answer + probes, stopped branches included
    mean_stopped_branches: float
    mean_latency_s: float
    wall_time_s: float | None = None  # the whole strategy run; on its overall row only


def summarize(evaluation: StrategyEval) -> list[SummaryRow]:
    groups: dict[tuple[str, str], list[ItemResult]] = {}
    for item in evaluation.items:
        groups.setdefault((item.family, item.difficulty), []).append(item)
    rows = [
        _row(evaluation.label, family, difficulty, items) for (family, difficulty), items in groups.items()
    ]
    overall = _row(evaluation.label, ALL, ALL, evaluation.items)
    rows.append(dataclasses.replace(overall, wall_time_s=evaluation.wall_time_s))
    return rows


def _row(label: str, family: str, difficulty: str, items: Sequence[ItemResult]) -> SummaryRow:
    count = max(1, len(items))

    def mean(name: str) -> float:
        return sum(getattr(item, name) for item in items) / count

    return SummaryRow(
        strategy=label,
        family=family,
        difficulty=difficulty,
        num_items=len(items),
        accuracy=sum(item.correct for item in items) / count,
        pass_at_n=sum(item.any_branch_correct for item in items) / count,
        mean_distinct_answers=sum(len(set(item.branch_answers)) for item in items) / count,
        mean_reasoning_tokens=mean("reasoning_tokens"),
        mean_answer_tokens=mean("answer_tokens"),
        mean_probe_tokens=mean("probe_tokens"),
        mean_generated_tokens=mean("generated_tokens"),
        mean_stopped_branches=mean("num_stopped_branches"),
        mean_latency_s=mean("latency_s"),
    )


_COLUMNS = (
    ("strategy", "strategy", "{}"),
    ("family", "family", "{}"),
    ("difficulty", "diff", "{}"),
    ("num_items", "n", "{}"),
    ("accuracy", "acc%", "{:.1f}"),
    ("pass_at_n", "pass@n%", "{:.1f}"),
    ("mean_distinct_answers", "distinct", "{:.1f}"),
    ("mean_reasoning_tokens", "reason", "{:.0f}"),
    ("mean_answer_tokens", "answer", "{:.0f}"),
    ("mean_probe_tokens", "probe", "{:.0f}"),
    ("mean_generated_tokens", "gen/item", "{:.0f}"),
    ("mean_stopped_branches", "stopped", "{:.1f}"),
    ("mean_latency_s", "lat_s", "{:.2f}"),
    ("wall_time_s", "wall_s", "{:.1f}"),
)


def format_table(rows: Sequence[SummaryRow]) -> str:
    """Token columns are means per problem, over every branch and probe of the strategy."""
    cells = [[title for _, title, _ in _COLUMNS]]
    for row in rows:
        line = []
        for name, _, fmt in _COLUMNS:
            value = getattr(row, name)
            if name in ("accuracy", "pass_at_n"):
                value *= 100
            line.append("" if value is None else fmt.format(value))
        cells.append(line)
    return align(cells, left_columns=3)


def align(cells: list[list[str]], left_columns: int) -> str:
    """A plain-text table: the first row a header, the first `left_columns` left-aligned."""
    widths = [max(len(line[i]) for line in cells) for i in range(len(cells[0]))]
    lines = [
        "  ".join(
            c.ljust(w) if i < left_columns else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))
        )
        for line in cells
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def to_json(
    evaluations: Sequence[StrategyEval],
    config: EvalConfig,
    model: str,
    comparisons: Sequence[Comparison] = (),
) -> dict:
    return {
        "model": model,
        "split": "test",
        "config": dataclasses.asdict(config),
        "strategies": [
            {
                "label": evaluation.label,
                "spec": evaluation.spec,
                "wall_time_s": evaluation.wall_time_s,
                "engine": evaluation.engine,
                "summary": [dataclasses.asdict(row) for row in summarize(evaluation)],
                "items": [dataclasses.asdict(item) for item in evaluation.items],
            }
            for evaluation in evaluations
        ],
        "comparisons": [dataclasses.asdict(comparison) for comparison in comparisons],
    }
