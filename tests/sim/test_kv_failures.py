"""The simulator's failed hand-offs (--kv-load-failure-policy recompute): the decode worker waits
the transfer timeout, then computes the prompt itself; TPOT carries the wait. The 1P2D run of
docs/results/disagg.md (13:32) had every load fail: TPOT 250-310 ms where a working hand-off
gives ~30 ms."""

from __future__ import annotations

import pytest

from ponder.errors import InvalidRequestError
from ponder.profiling.step_model import StepModel
from ponder.sim.cluster import ClusterSpec, simulate
from ponder.sim.report import tpot_of
from ponder.sim.worker import SimRequest

MODEL = StepModel(overhead_s=0.02, per_token_s=0.001, per_seq_s=0.001, per_attn_s=0.0)


def requests(n: int = 8, gap: float = 3.0) -> list[SimRequest]:
    return [SimRequest(i, i * gap, 512, 48) for i in range(n)]


def test_every_load_failing_costs_the_timeout_and_a_recompute():
    spec = ClusterSpec(prefill=1, decode=2, budget=2048, kv_transfer_s=0.05)
    ok = simulate(requests(), spec, MODEL)
    failed = simulate(requests(), ClusterSpec(**{**spec.__dict__, "kv_failed_share": 1.0}), MODEL)
    decode_step = 0.02 + 0.001 + 0.001  # one sequence decoding alone (arrivals 3 s apart)
    prompt_step = 0.02 + 0.001 * 513 + 0.001  # the decode worker computes prompt + first token
    for good, bad in zip(ok, failed):
        assert bad.first_token == good.first_token  # the prefill worker's token: TTFT unchanged
        assert tpot_of(good) == pytest.approx((0.05 + 47 * decode_step) / 47)
        assert tpot_of(bad) == pytest.approx((10.0 + prompt_step + 46 * decode_step) / 47)
        assert bad.kv_failed and not good.kv_failed


def test_a_share_of_failures_is_spread_evenly():
    spec = ClusterSpec(prefill=1, decode=1, budget=2048, kv_failed_share=0.25)
    done = simulate(requests(8), spec, MODEL)
    assert sum(r.kv_failed for r in done) == 2
    with pytest.raises(InvalidRequestError):
        ClusterSpec(prefill=1, decode=1, kv_failed_share=1.5)
