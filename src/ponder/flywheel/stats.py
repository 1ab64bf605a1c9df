"""What the request log holds: counts and latency per model version, workload and strategy."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable

from ponder.flywheel.records import LogRecord


def summarize(records: Iterable[LogRecord]) -> list[dict]:
    """One row per (model version, workload, strategy)."""
    groups: dict[tuple[str, str, str], list[LogRecord]] = defaultdict(list)
    for record in records:
        groups[(record.model_version, record.workload_id, record.strategy or "-")].append(record)
    table = []
    for (version, workload, strategy), rows in sorted(groups.items()):
        latencies = sorted(row.latency_s for row in rows)
        agreements = [row.agreement for row in rows if row.agreement is not None]
        feedback = [row.feedback for row in rows if row.feedback is not None]
        table.append(
            {
                "version": version,
                "workload": workload,
                "strategy": strategy,
                "rows": len(rows),
                "errors": sum(row.status != "ok" for row in rows),
                "p50_latency_s": latencies[len(latencies) // 2],
                "p95_latency_s": latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))],
                "completion_tokens": sum(row.completion_tokens for row in rows),
                "mean_agreement": statistics.fmean(agreements) if agreements else None,
                "feedback_rows": len(feedback),
                "mean_feedback": statistics.fmean(feedback) if feedback else None,
            }
        )
    return table


def format_table(rows: list[dict]) -> str:
    """A plain-text table (columns of the dicts, in order)."""
    if not rows:
        return "(no rows)"
    columns = list(rows[0])
    cells = [[_cell(row[column]) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)]
    lines = ["  ".join(column.ljust(width) for column, width in zip(columns, widths))]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)) for line in cells]
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
