"""Markdown for people: one run's tables, a sweep overview, and two result files side by side."""

from __future__ import annotations

LATENCY_ROWS = (
    ("TTFT", "ttft_ms"),
    ("TPOT", "tpot_ms"),
    ("ITL", "itl_ms"),
    ("E2E latency", "e2e_ms"),
    ("Time to answer", "time_to_answer_ms"),
)
STAT_COLUMNS = ("mean", "median", "p90", "p99", "std")

# (row name, path into a summary) for `compare`.
COMPARED_METRICS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Request throughput (req/s)", ("request_throughput",)),
    ("Output token throughput (tok/s)", ("output_throughput",)),
    ("Total token throughput (tok/s)", ("total_token_throughput",)),
    ("Request goodput (req/s)", ("request_goodput",)),
    ("SLO attainment (%)", ("slo_attainment_pct",)),
    ("Failed requests", ("failed",)),
    ("Mean TTFT (ms)", ("ttft_ms", "mean")),
    ("P99 TTFT (ms)", ("ttft_ms", "p99")),
    ("Mean TPOT (ms)", ("tpot_ms", "mean")),
    ("P99 TPOT (ms)", ("tpot_ms", "p99")),
    ("Mean ITL (ms)", ("itl_ms", "mean")),
    ("P99 ITL (ms)", ("itl_ms", "p99")),
    ("Mean E2E latency (ms)", ("e2e_ms", "mean")),
    ("P99 E2E latency (ms)", ("e2e_ms", "p99")),
    ("Mean time to answer (ms)", ("time_to_answer_ms", "mean")),
    ("P99 time to answer (ms)", ("time_to_answer_ms", "p99")),
    ("Mean reasoning tokens", ("reasoning_tokens", "mean")),
    ("Mean answer tokens", ("answer_tokens", "mean")),
    ("Accuracy", ("accuracy",)),
)


def fmt(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def rate_label(rate: float | str) -> str:
    return "inf" if rate == "inf" else f"{float(rate):g}"


def markdown_report(document: dict) -> str:
    """The tables printed to stdout after a run."""
    target, workload = document["config"]["target"], document["config"]["workload"]
    lines = [
        f"## ponder bench: {document['model']}",
        "",
        f"Target `{target['base_url']}{target['endpoint']}`, dataset `{workload['dataset']}`.",
    ]
    for run in document["runs"]:
        lines += ["", *run_tables(run["summary"])]
    if len(document["runs"]) > 1:
        lines += ["", *sweep_table([run["summary"] for run in document["runs"]])]
    return "\n".join(lines) + "\n"


def run_tables(summary: dict) -> list[str]:
    errors = ", ".join(f"{kind} ×{count}" for kind, count in summary["errors"].items())
    slo = ", ".join(f"{name} ≤ {ms:g} ms" for name, ms in summary["slo_ms"].items())
    accuracy = summary["accuracy"]
    rows = [
        ("Successful requests", f"{summary['completed']} of {summary['num_requests']}"),
        ("Failed requests", f"{summary['failed']}" + (f" ({errors})" if errors else "")),
        ("Benchmark duration (s)", fmt(summary["duration_s"])),
        ("Request throughput (req/s)", fmt(summary["request_throughput"])),
        ("Output token throughput (tok/s)", fmt(summary["output_throughput"])),
        ("Total token throughput (tok/s)", fmt(summary["total_token_throughput"])),
        ("Request goodput (req/s)", fmt(summary["request_goodput"]) + (f" ({slo})" if slo else "")),
        ("SLO attainment (%)", fmt(summary["slo_attainment_pct"])),
        ("Reasoning tokens per request (mean)", fmt(summary["reasoning_tokens"]["mean"])),
        ("Answer tokens per request (mean)", fmt(summary["answer_tokens"]["mean"])),
        (
            "Accuracy",
            "–"
            if accuracy is None
            else f"{100 * accuracy:.1f}% ({summary['num_correct']} of {summary['num_checked']})",
        ),
        ("Peak concurrent requests", fmt(summary["max_concurrent_requests"])),
    ]
    lines = [f"### Request rate {rate_label(summary['request_rate'])} req/s", ""]
    lines += ["| Metric | Value |", "|---|---:|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    lines += [
        "",
        "| Latency (ms) | Mean | Median | P90 | P99 | Std |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, key in LATENCY_ROWS:
        stats = summary[key]
        lines.append(f"| {name} | " + " | ".join(fmt(stats[c]) for c in STAT_COLUMNS) + " |")
    for kind, example in summary["error_examples"].items():
        lines.append(f"\n> error `{kind}`, e.g.: {example}")
    lines += [f"\n> note: {note}" for note in summary["notes"]]
    return lines


def sweep_table(summaries: list[dict]) -> list[str]:
    lines = [
        "### Sweep",
        "",
        "| Rate (req/s) | Done | Failed | Req/s | Output tok/s | Goodput | SLO % "
        "| Mean TTFT (ms) | P99 TTFT (ms) | Mean TPOT (ms) | Mean time to answer (ms) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        cells = [
            rate_label(s["request_rate"]),
            s["completed"],
            s["failed"],
            s["request_throughput"],
            s["output_throughput"],
            s["request_goodput"],
            s["slo_attainment_pct"],
            s["ttft_ms"]["mean"],
            s["ttft_ms"]["p99"],
            s["tpot_ms"]["mean"],
            s["time_to_answer_ms"]["mean"],
        ]
        lines.append("| " + " | ".join(fmt(c) for c in cells) + " |")
    return lines


def compare_report(first: dict, second: dict, first_label: str, second_label: str) -> str:
    """Both files' summaries side by side, with second/first ratios, run by matching rate."""
    lines = [f"## ponder bench compare: {first_label} vs {second_label}"]
    pairs = _pair_runs(first["runs"], second["runs"])
    if not pairs:
        lines += ["", "The two files have no request rate in common; nothing to compare."]
    for run_a, run_b in pairs:
        a, b = run_a["summary"], run_b["summary"]
        lines += [
            "",
            f"### Request rate {rate_label(a['request_rate'])} vs {rate_label(b['request_rate'])} req/s",
            "",
            f"| Metric | {first_label} | {second_label} | ratio ({second_label}/{first_label}) |",
            "|---|---:|---:|---:|",
        ]
        for name, path in COMPARED_METRICS:
            value_a, value_b = _lookup(a, path), _lookup(b, path)
            lines.append(f"| {name} | {fmt(value_a)} | {fmt(value_b)} | {_ratio(value_a, value_b)} |")
    return "\n".join(lines) + "\n"


def _pair_runs(runs_a: list[dict], runs_b: list[dict]) -> list[tuple[dict, dict]]:
    by_rate = {run["summary"]["request_rate"]: run for run in runs_b}
    pairs = [(run, by_rate[r]) for run in runs_a if (r := run["summary"]["request_rate"]) in by_rate]
    if not pairs and len(runs_a) == len(runs_b):  # e.g. one run each at different rates
        pairs = list(zip(runs_a, runs_b, strict=True))
    return pairs


def _lookup(summary: dict, path: tuple[str, ...]) -> object:
    value: object = summary
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _ratio(a: object, b: object) -> str:
    if not isinstance(a, int | float) or not isinstance(b, int | float) or a == 0:
        return "–"
    return f"{b / a:.2f}x"
