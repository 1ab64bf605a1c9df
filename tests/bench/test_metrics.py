"""Summary statistics, TPOT and goodput as vLLM defines them, and peak concurrency."""

from __future__ import annotations

import numpy as np
import pytest

from ponder.bench.metrics import describe, peak_concurrency, summarize
from ponder.bench.records import RequestRecord, RunResult
from ponder.bench.slo import SLO


def record(index: int, start: float, ttft: float, e2e: float, tokens: int, **extra) -> RequestRecord:
    gaps = [(e2e - ttft) / (tokens - 1)] * (tokens - 1) if tokens > 1 else []
    return RequestRecord(
        index=index,
        prompt_len=10,
        max_tokens=tokens,
        start_s=start,
        success=True,
        ttft_s=ttft,
        e2e_s=e2e,
        time_to_answer_s=extra.pop("tta", ttft),
        itl_s=gaps,
        output_tokens=tokens,
        reasoning_tokens=0,
        answer_tokens=tokens,
        token_count_source="usage",
        **extra,
    )


def failure(index: int, kind: str) -> RequestRecord:
    return RequestRecord(index, 10, 5, 0.0, False, error_kind=kind, error=f"{kind} happened")


def test_describe_matches_numpy_and_gives_none_when_empty():
    values = [0.3, 0.1, 0.2, 0.9]
    stats = describe(values, 1000.0)
    assert stats["mean"] == pytest.approx(375.0)
    assert stats["median"] == pytest.approx(250.0)
    assert stats["p90"] == pytest.approx(np.percentile(values, 90) * 1000, abs=1e-3)
    assert stats["p99"] == pytest.approx(np.percentile(values, 99) * 1000, abs=1e-3)
    assert stats["std"] == pytest.approx(np.std(values) * 1000, abs=1e-3)
    assert describe([]) == dict.fromkeys(("mean", "median", "p90", "p99", "std"))


def test_tpot_is_latency_minus_ttft_over_tokens_minus_one():
    assert record(0, 0.0, 0.1, 0.28, 10).tpot_s == pytest.approx(0.02)
    assert record(0, 0.0, 0.1, 0.1, 1).tpot_s is None
    assert failure(0, "timeout").tpot_s is None


def test_summary_throughput_goodput_and_errors():
    records = [
        record(0, 0.0, 0.10, 0.28, 10),  # meets both targets
        record(1, 0.0, 0.30, 0.48, 10),  # TTFT too slow
        record(2, 0.5, 0.10, 0.55, 10),  # TPOT 50 ms: too slow
        record(3, 0.5, 0.15, 0.15, 1),  # one token: TPOT counts as 0 for goodput
        failure(4, "http_500"),
        failure(5, "http_500"),
        failure(6, "timeout"),
    ]
    summary = summarize(RunResult(2.0, 2.0, records), SLO(ttft=0.2, tpot=0.03))
    assert (summary["completed"], summary["failed"], summary["num_requests"]) == (4, 3, 7)
    assert summary["errors"] == {"http_500": 2, "timeout": 1}
    assert summary["error_examples"]["timeout"] == "timeout happened"
    assert summary["num_good"] == 2
    assert summary["request_goodput"] == pytest.approx(1.0)
    assert summary["slo_attainment_pct"] == pytest.approx(100 * 2 / 7, abs=0.01)
    assert summary["request_throughput"] == pytest.approx(2.0)
    assert summary["total_output_tokens"] == 31
    assert summary["output_throughput"] == pytest.approx(15.5)
    assert summary["total_token_throughput"] == pytest.approx((40 + 31) / 2.0)
    # TPOT statistics skip the single-token response, as vLLM
    assert summary["tpot_ms"]["mean"] == pytest.approx((20 + 20 + 50) / 3, abs=1e-3)
    assert summary["ttft_ms"]["mean"] == pytest.approx(162.5)


def test_summary_without_slo_reports_no_goodput():
    summary = summarize(RunResult(1.0, 1.0, [record(0, 0.0, 0.1, 0.2, 3)]), SLO())
    assert summary["request_goodput"] is None and summary["slo_attainment_pct"] is None


def test_accuracy_counts_only_checked_requests():
    records = [
        record(0, 0.0, 0.1, 0.2, 3, correct=True),
        record(1, 0.0, 0.1, 0.2, 3, correct=False),
        record(2, 0.0, 0.1, 0.2, 3, correct=True),
        record(3, 0.0, 0.1, 0.2, 3),
    ]
    summary = summarize(RunResult(1.0, 1.0, records), SLO())
    assert (summary["num_checked"], summary["num_correct"]) == (3, 2)
    assert summary["accuracy"] == pytest.approx(2 / 3, abs=1e-4)


def test_peak_concurrency_uses_half_open_spans():
    back_to_back = [record(0, 0.0, 0.1, 1.0, 2), record(1, 1.0, 0.1, 1.0, 2)]
    assert peak_concurrency(back_to_back) == 1
    overlapping = [record(i, 0.1 * i, 0.1, 1.0, 2) for i in range(4)] + [failure(9, "timeout")]
    assert peak_concurrency(overlapping) == 4


def test_chunk_counted_tokens_leave_a_note():
    approx = record(0, 0.0, 0.1, 0.2, 3)
    approx.token_count_source = "chunks"
    summary = summarize(RunResult(1.0, 1.0, [approx]), SLO())
    assert summary["token_count_sources"] == {"chunks": 1}
    assert any("--tokenizer" in note for note in summary["notes"])
