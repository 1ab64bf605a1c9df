"""Accuracy against generated tokens per problem, one point per strategy (PNG, matplotlib Agg)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ponder.errors import PonderError
from ponder.eval.report import ALL, SummaryRow


def plot_accuracy_vs_tokens(rows: Sequence[SummaryRow], path: str | Path, title: str = "") -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise PonderError("--plot needs matplotlib: pip install matplotlib") from error
    overall = [row for row in rows if row.family == ALL]
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    for row in overall:
        axes.scatter(row.mean_generated_tokens, 100 * row.accuracy, s=40)
        axes.annotate(
            row.strategy,
            (row.mean_generated_tokens, 100 * row.accuracy),
            textcoords="offset points",
            xytext=(5, 4),
            fontsize=8,
        )
    tokens = [row.mean_generated_tokens for row in overall if row.mean_generated_tokens > 0]
    if tokens and max(tokens) > 8 * min(tokens):
        axes.set_xscale("log")
    axes.set_xlabel("generated tokens per problem (all branches and probes)")
    axes.set_ylabel("accuracy (%)")
    axes.set_title(title or "accuracy vs. tokens")
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path)
    plt.close(figure)
    return path
