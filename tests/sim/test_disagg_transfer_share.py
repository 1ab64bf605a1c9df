"""benchmarks/disagg.py's transfer column from the decode workers' /metrics texts: with two decode
workers (1P2D) summed, and failed loads shown, not an empty cell (the 13:32 run's 1P2D had every
load fail and printed "-")."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "disagg.py"


def worker_metrics(ok: int, failed: int, transfer_s: float, prefill_s: float, recomputed: int) -> str:
    """A decode worker's /metrics as prometheus_client renders it (other families around it)."""
    return f"""# HELP ponder:num_requests_running Requests running
# TYPE ponder:num_requests_running gauge
ponder:num_requests_running{{model_name="ponder"}} 2.0
# HELP ponder:kv_transfer_loads_total KV loads by outcome
# TYPE ponder:kv_transfer_loads_total counter
ponder:kv_transfer_loads_total{{outcome="ok"}} {ok}.0
ponder:kv_transfer_loads_total{{outcome="failed"}} {failed}.0
# HELP ponder:kv_transfer_fallbacks_total Failed loads by what followed
# TYPE ponder:kv_transfer_fallbacks_total counter
ponder:kv_transfer_fallbacks_total{{action="recompute"}} {recomputed}.0
ponder:kv_transfer_fallbacks_total{{action="fail"}} 0.0
# HELP ponder:kv_transfer_seconds_total Load start to KV in cache, summed over loads
# TYPE ponder:kv_transfer_seconds_total counter
ponder:kv_transfer_seconds_total {transfer_s}
# HELP ponder:kv_transfer_prefill_seconds_total The producers' prefill time of the same loads
# TYPE ponder:kv_transfer_prefill_seconds_total counter
ponder:kv_transfer_prefill_seconds_total {prefill_s}
# HELP ponder:kv_transfer_prefill_share Transfer time / prefill time over all loads
# TYPE ponder:kv_transfer_prefill_share gauge
ponder:kv_transfer_prefill_share 0.02
"""


@pytest.fixture(scope="module")
def disagg():
    spec = importlib.util.spec_from_file_location("disagg_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_two_decode_workers_are_summed(disagg):
    before = disagg.transfer_totals([worker_metrics(1, 0, 0.01, 0.5, 0), worker_metrics(0, 0, 0.0, 0.0, 0)])
    after = disagg.transfer_totals([worker_metrics(4, 0, 0.04, 2.0, 0), worker_metrics(3, 0, 0.06, 1.5, 0)])
    assert after == {"transfer_s": 0.1, "prefill_s": 3.5, "loads_ok": 7, "loads_failed": 0, "recomputed": 0}
    row = disagg.transfer_fields(before, after)
    assert row == {"transfer_share_pct": 3.0, "transfer_ms_mean": 15.0, "loads_ok": 6, "loads_failed": 0}
    assert disagg.share_cell(row) == "3.0% (15.0 ms)"


def test_failed_loads_are_shown_not_dropped(disagg):
    zero = disagg.transfer_totals([worker_metrics(0, 0, 0.0, 0.0, 0)] * 2)
    all_failed = disagg.transfer_totals(
        [worker_metrics(0, 5, 0.0, 0.0, 5), worker_metrics(0, 7, 0.0, 0.0, 7)]
    )
    assert all_failed["loads_failed"] == 12 and all_failed["recomputed"] == 12
    row = disagg.transfer_fields(zero, all_failed)
    assert disagg.share_cell(row) == "no load ok; 12 of 12 loads failed"
    some = disagg.transfer_fields(zero, disagg.transfer_totals([worker_metrics(3, 1, 0.03, 1.0, 1)]))
    assert disagg.share_cell(some) == "3.0% (10.0 ms); 1 of 4 loads failed"
    assert disagg.share_cell({"config": "colocated3"}) == "-"
