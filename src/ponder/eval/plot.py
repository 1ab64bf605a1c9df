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
        import matplotlib.ticker
    except ImportError as error:
        raise PonderError("--plot needs matplotlib: pip install matplotlib") from error
    overall = [row for row in rows if row.family == ALL]
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    tokens = [row.mean_generated_tokens for row in overall if row.mean_generated_tokens > 0]
    low, high = min(tokens, default=1.0), max(tokens, default=1.0)
    log_scale = high > 8 * low
    middle = (low * high) ** 0.5 if log_scale else (low + high) / 2
    for row in overall:
        point = (row.mean_generated_tokens, 100 * row.accuracy)
        axes.scatter(*point, s=40)
        left = row.mean_generated_tokens > middle  # label the right half leftwards: stays inside
        axes.annotate(
            row.strategy,
            point,
            textcoords="offset points",
            xytext=(-5 if left else 5, 4),
            ha="right" if left else "left",
            fontsize=8,
        )
    if log_scale:
        axes.set_xscale("log")
        axes.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        axes.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:,.0f}"))
        axes.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes.set_xlabel("generated tokens per problem (all branches and probes)")
    axes.set_ylabel("accuracy (%)")
    axes.set_title(title or "accuracy vs. tokens")
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path)
    plt.close(figure)
    return path
