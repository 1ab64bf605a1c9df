"""PNG plots of a result document: latency CDFs, and throughput/goodput against request rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ponder.bench.report import rate_label

CDF_PANELS = (
    ("TTFT (ms)", "ttft_ms"),
    ("TPOT (ms)", "tpot_ms"),
    ("ITL (ms)", "itl_ms"),
    ("E2E latency (ms)", "e2e_ms"),
    ("Time to answer (ms)", "time_to_answer_ms"),
    ("Reasoning tokens per request", "reasoning_tokens"),
)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: must work on machines without a display
    import matplotlib.pyplot as plt

    return plt


def write_plots(document: dict, result_dir: str, name: str) -> list[Path]:
    """Writes `<name>-latency-cdf.png`, plus `<name>-sweep.png` when several rates ran."""
    paths = [plot_latency_cdfs(document, Path(result_dir) / f"{name}-latency-cdf.png")]
    if len(document["runs"]) > 1:
        paths.append(plot_sweep(document, Path(result_dir) / f"{name}-sweep.png"))
    return paths


def _request_values(requests: list[dict], key: str) -> list[float]:
    done = [r for r in requests if r["success"]]
    if key == "itl_ms":
        return [gap for r in done for gap in r["itl_ms"]]
    return [r[key] for r in done if r[key] is not None]


def plot_latency_cdfs(document: dict, path: Path) -> Path:
    plt = _pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    for axis, (title, key) in zip(axes.flat, CDF_PANELS, strict=True):
        for run in document["runs"]:
            values = np.sort(np.asarray(_request_values(run["requests"], key), dtype=float))
            if values.size == 0:
                continue
            fraction = np.arange(1, values.size + 1) / values.size
            label = f"{rate_label(run['summary']['request_rate'])} req/s"
            axis.step(values, fraction, where="post", label=label)
        axis.set_title(title)
        axis.set_ylabel("fraction of requests" if key != "itl_ms" else "fraction of chunks")
        axis.set_ylim(0, 1.02)
        axis.grid(alpha=0.3)
        if axis.has_data():
            axis.legend(fontsize=8)
    fig.suptitle(f"ponder bench: {document['model']} (latency CDFs)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _rate_positions(rates: list[float | str]) -> tuple[list[float], list[str]]:
    """x positions for rates; an infinite rate sits to the right of the largest finite one."""
    finite = [float(r) for r in rates if r != "inf"]
    inf_position = max(finite) * 1.5 if finite else 1.0
    return [inf_position if r == "inf" else float(r) for r in rates], [rate_label(r) for r in rates]


def plot_sweep(document: dict, path: Path) -> Path:
    plt = _pyplot()
    summaries = [run["summary"] for run in document["runs"]]
    x, labels = _rate_positions([s["request_rate"] for s in summaries])
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4.5))
    left.plot(x, [s["request_throughput"] for s in summaries], "o-", label="throughput")
    if any(s["request_goodput"] is not None for s in summaries):
        goodput = [s["request_goodput"] if s["request_goodput"] is not None else np.nan for s in summaries]
        left.plot(x, goodput, "s--", label="goodput (meets SLO)")
    left.set_ylabel("requests / s")
    left.set_title("Request throughput and goodput")
    left.legend()
    middle.plot(x, [s["output_throughput"] for s in summaries], "o-")
    middle.set_ylabel("output tokens / s")
    middle.set_title("Output token throughput")
    for stat, style in (("mean", "o-"), ("p99", "s--")):
        ttft = [s["ttft_ms"][stat] if s["ttft_ms"][stat] is not None else np.nan for s in summaries]
        right.plot(x, ttft, style, label=f"{stat} TTFT")
    right.set_ylabel("ms")
    right.set_title("Time to first token")
    right.legend()
    for axis in (left, middle, right):
        axis.set_xticks(x, labels)
        axis.set_xlabel("request rate (req/s)")
        axis.grid(alpha=0.3)
    fig.suptitle(f"ponder bench: {document['model']} (sweep)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
