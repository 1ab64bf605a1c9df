"""The summary of one run: latency statistics, throughput, goodput, reasoning cost and accuracy."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from ponder.bench.config import rate_to_json
from ponder.bench.records import RequestRecord, RunResult
from ponder.bench.slo import SLO

STAT_NAMES = ("mean", "median", "p90", "p99", "std")


def describe(values: Sequence[float], scale: float = 1.0) -> dict[str, float | None]:
    """Mean, median, p90, p99 and (population) std, as numpy computes them for vLLM.

    An empty sample gives None for each, rather than vLLM's zeros that read as measurements.
    """
    if not values:
        return dict.fromkeys(STAT_NAMES)
    data = np.asarray(values, dtype=float) * scale
    stats = {
        "mean": np.mean(data),
        "median": np.median(data),
        "p90": np.percentile(data, 90),
        "p99": np.percentile(data, 99),
        "std": np.std(data),
    }
    return {name: round(float(value), 3) for name, value in stats.items()}


def meets_slo(record: RequestRecord, slo: SLO) -> bool:
    """vLLM's goodput test; a single-token response counts TPOT as 0, as vLLM does."""
    if not record.success:
        return False
    assert record.ttft_s is not None and record.e2e_s is not None
    return slo.is_met(record.ttft_s, record.tpot_s or 0.0, record.e2e_s, record.time_to_answer_s)


def peak_concurrency(records: Sequence[RequestRecord]) -> int:
    """Most completed requests in flight at one instant, over half-open [start, end) spans."""
    events = [(r.start_s, 1) for r in records if r.success]
    events += [(r.end_s, -1) for r in records if r.success]
    in_flight = peak = 0
    for _, change in sorted(events):  # at a tie, the -1 sorts first: an end frees its slot
        in_flight += change
        peak = max(peak, in_flight)
    return peak


def summarize(run: RunResult, slo: SLO) -> dict:
    """The `summary` object of the result file (see docs/bench.md for each field)."""
    done = [r for r in run.records if r.success]
    failed = [r for r in run.records if not r.success]
    duration = run.duration_s
    total_input = sum(r.prompt_len for r in done)
    total_output = sum(r.output_tokens for r in done)
    checked = [r for r in done if r.correct is not None]
    num_good = sum(meets_slo(r, slo) for r in done) if not slo.is_empty else None
    errors = Counter(r.error_kind for r in failed)
    return {
        "request_rate": rate_to_json(run.request_rate),
        "duration_s": round(duration, 4),
        "num_requests": len(run.records),
        "completed": len(done),
        "failed": len(failed),
        "errors": dict(errors),
        "error_examples": {kind: _first_error(failed, kind) for kind in errors},
        "total_input_tokens": total_input,
        "total_output_tokens": total_output,
        "total_reasoning_tokens": sum(r.reasoning_tokens for r in done),
        "total_answer_tokens": sum(r.answer_tokens for r in done),
        "request_throughput": _per_second(len(done), duration),
        "output_throughput": _per_second(total_output, duration),
        "total_token_throughput": _per_second(total_input + total_output, duration),
        "slo_ms": slo.as_ms_dict(),
        "num_good": num_good,
        "request_goodput": None if num_good is None else _per_second(num_good, duration),
        "slo_attainment_pct": (
            None if num_good is None else round(100.0 * num_good / max(len(run.records), 1), 2)
        ),
        "ttft_ms": describe([r.ttft_s for r in done if r.ttft_s is not None], 1000.0),
        "tpot_ms": describe([r.tpot_s for r in done if r.tpot_s is not None], 1000.0),
        "itl_ms": describe([gap for r in done for gap in r.itl_s], 1000.0),
        "e2e_ms": describe([r.e2e_s for r in done if r.e2e_s is not None], 1000.0),
        "time_to_answer_ms": describe(
            [r.time_to_answer_s for r in done if r.time_to_answer_s is not None], 1000.0
        ),
        "num_answered": sum(r.time_to_answer_s is not None for r in done),
        "output_tokens": describe([r.output_tokens for r in done]),
        "reasoning_tokens": describe([r.reasoning_tokens for r in done]),
        "answer_tokens": describe([r.answer_tokens for r in done]),
        "max_concurrent_requests": peak_concurrency(run.records),
        "token_count_sources": dict(Counter(r.token_count_source for r in done)),
        "num_checked": len(checked),
        "num_correct": sum(bool(r.correct) for r in checked),
        "accuracy": round(sum(bool(r.correct) for r in checked) / len(checked), 4) if checked else None,
        "notes": _notes(done),
    }


def _per_second(count: float, duration: float) -> float:
    return round(count / duration, 4) if duration > 0 else 0.0


def _first_error(failed: list[RequestRecord], kind: str | None) -> str | None:
    return next(r.error for r in failed if r.error_kind == kind)


def _notes(done: list[RequestRecord]) -> list[str]:
    notes = []
    by_chunks = sum(r.token_count_source == "chunks" for r in done)
    if by_chunks:
        notes.append(
            f"{by_chunks} response(s) came without usage and no --tokenizer was given: their "
            "output tokens are counted as stream chunks (one token per chunk), so token "
            "throughput, TPOT and reasoning/answer tokens are approximate"
        )
    unchecked = sum(r.check_error is not None for r in done)
    if unchecked:
        notes.append(f"{unchecked} answer check(s) raised an error; see check_error per request")
    return notes
