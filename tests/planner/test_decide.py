"""Planner decisions on crafted metric windows: scale prefill up on TTFT misses and decode on
TPOT misses, independently; min/max respected; scale-down only after several low intervals
(hysteresis), one at a time, never while the SLO is missed; the profile sizes the pools; bad
input raises typed errors. Metrics text is parsed with prometheus_client's parser."""

import pytest

from ponder.errors import InvalidRequestError
from ponder.planner.decide import Capacity, Planner, PlannerConfig
from ponder.planner.signals import Window, parse_metrics, window
from ponder.profiling.step_model import StepModel

# 1 ms/step overhead, 0.1 ms per token, no attention term: prefill of 100 tokens = 11 ms,
# a decode step of batch b = 1 + 0.1 b ms.
MODEL = StepModel(overhead_s=1e-3, per_token_s=1e-4, per_seq_s=0.0, per_attn_s=0.0)


def win(rate=1.0, ttft_ok=1.0, tpot_ok=1.0, in_len=100, out_len=50, ttft=0.011, tpot=0.0011, running=1.0):
    n = rate * 10
    return Window(10.0, n, n, in_len, out_len, ttft_ok, tpot_ok, ttft, tpot, 0.0, running, 0.2)


def disagg(**overrides) -> Planner:
    config = dict(ttft_slo_s=0.5, tpot_slo_s=0.05, mode="disagg", min_prefill=1, max_prefill=4)
    config |= dict(min_decode=1, max_decode=4, scale_down_after=3)
    return Planner(PlannerConfig(**(config | overrides)), MODEL)


def test_capacity_from_the_profile():
    cap = Capacity(MODEL)
    assert cap.prefill_s(100) == pytest.approx(0.011)
    assert cap.decode_batch(context=100, tpot_slo_s=0.011) == 100  # 1 + 0.1 * 100 ms
    assert cap.decode_batch(context=100, tpot_slo_s=0.0005) == 0  # not even one sequence
    assert cap.decode_tokens_per_s(100, 0.011) == pytest.approx(100 / 0.011)


def test_profile_sizes_the_pools():
    planner = disagg(max_prefill=10)
    # 200 req/s x 11 ms = 2.2 worker-seconds/s of prefill at 70 % -> 4 workers
    decision = planner.decide(win(rate=200), win(rate=200), {"prefill": 1, "decode": 1})
    assert decision.target["prefill"] == 4 and decision.needed["prefill"] == pytest.approx(2.2 / 0.7, 0.01)
    assert decision.action("prefill") == "up" and "profile needs" in decision.reasons["prefill"]


def test_ttft_misses_scale_prefill_only_and_tpot_misses_decode_only():
    planner = disagg()
    current = {"prefill": 1, "decode": 1}
    decision = planner.decide(win(ttft_ok=0.5), win(), current)
    assert decision.target == {"prefill": 2, "decode": 1}
    assert "TTFT attainment 0.50" in decision.reasons["prefill"]
    decision = disagg().decide(win(), win(tpot_ok=0.7), current)
    assert decision.target == {"prefill": 1, "decode": 2}
    assert "TPOT attainment 0.70" in decision.reasons["decode"]


def test_min_and_max_are_respected():
    planner = disagg(max_prefill=2, min_decode=2)
    decision = planner.decide(win(rate=1000, ttft_ok=0.1), win(), {"prefill": 2, "decode": 2})
    assert decision.target["prefill"] == 2 and "clamped" in decision.reasons["prefill"]
    for _ in range(5):  # no load at all: never below the minimum
        decision = planner.decide(win(rate=0.0), win(rate=0.0), {"prefill": 1, "decode": 2})
    assert decision.target == {"prefill": 1, "decode": 2}


def test_scale_down_needs_several_low_intervals_and_moves_one_at_a_time():
    planner = disagg(scale_down_after=3)
    current = {"prefill": 3, "decode": 3}
    actions = [planner.decide(win(rate=0.1), win(rate=0.1), current).target["prefill"] for _ in range(3)]
    assert actions == [3, 3, 2]  # hold, hold, then one worker drains
    # a missed SLO in between resets the count and holds
    planner = disagg(scale_down_after=2)
    planner.decide(win(rate=0.1), win(rate=0.1), current)
    decision = planner.decide(win(rate=0.1, ttft_ok=0.5), win(rate=0.1), current)
    assert decision.target["prefill"] == 4  # a miss is one more, whatever the profile says
    decision = planner.decide(win(rate=0.1), win(rate=0.1), current)
    assert decision.target["prefill"] == 3 and "1/2" in decision.reasons["prefill"]


def test_rising_load_is_taken_at_once_and_falling_load_smoothly():
    planner = disagg(max_prefill=20, ewma_alpha=0.5)
    planner.decide(win(rate=100), win(rate=100), {"prefill": 2, "decode": 1})
    up = planner.decide(win(rate=200), win(rate=200), {"prefill": 2, "decode": 1})
    assert up.predicted["rate"] == 200  # a load step is not averaged away
    down = planner.decide(win(rate=20), win(rate=20), {"prefill": 4, "decode": 1})
    assert 20 < down.predicted["rate"] < 200


def test_correction_factor_from_observed_over_expected_latency():
    planner = disagg(ewma_alpha=1.0)
    # 1 req/s on 1 worker: rho = 0.011, expected TTFT ~ 11 ms; observed 33 ms -> 3x slower
    observed = win(rate=1, ttft=0.011 * 3 * (1 + 0.011 / (2 * 0.989)))
    decision = planner.decide(observed, win(), {"prefill": 1, "decode": 1})
    assert decision.correction["prefill"] == pytest.approx(3.0, rel=0.01)
    assert decision.needed["prefill"] == pytest.approx(1 * 0.011 * 3 / 0.7, rel=0.01)


def test_colocated_mode_sums_prefill_and_decode_work():
    planner = Planner(PlannerConfig(ttft_slo_s=0.5, tpot_slo_s=0.05, max_prefill=8, max_decode=8), MODEL)
    decision = planner.decide(win(rate=200), None, {"colocated": 1})
    assert set(decision.target) == {"colocated"} and decision.target["colocated"] > 4
    assert decision.to_json()["actions"] == {"colocated": "up"}


def test_bad_input_is_a_typed_error():
    with pytest.raises(InvalidRequestError):
        PlannerConfig(ttft_slo_s=0, tpot_slo_s=0.05)
    with pytest.raises(InvalidRequestError):
        PlannerConfig(ttft_slo_s=1, tpot_slo_s=0.05, mode="mixed")
    with pytest.raises(InvalidRequestError):
        PlannerConfig(ttft_slo_s=1, tpot_slo_s=0.05, min_decode=3, max_decode=2)
    with pytest.raises(InvalidRequestError):
        disagg().decide(win(), win(), {"prefill": 1})
    with pytest.raises(InvalidRequestError, match="not Prometheus"):
        parse_metrics("{{{ not metrics")
    with pytest.raises(InvalidRequestError, match="no ponder"):
        parse_metrics("# TYPE other gauge\nother 1\n")
    with pytest.raises(InvalidRequestError):
        window([], [], 0.0, 1.0, 1.0)


TEXT = """# TYPE ponder:time_to_first_token_seconds histogram
ponder:time_to_first_token_seconds_bucket{le="0.1",model_name="m"} {a}
ponder:time_to_first_token_seconds_bucket{le="0.5",model_name="m"} {b}
ponder:time_to_first_token_seconds_bucket{le="+Inf",model_name="m"} {n}
ponder:time_to_first_token_seconds_count{model_name="m"} {n}
ponder:time_to_first_token_seconds_sum{model_name="m"} {s}
# TYPE ponder:request_prompt_tokens histogram
ponder:request_prompt_tokens_bucket{le="+Inf",model_name="m"} {n}
ponder:request_prompt_tokens_count{model_name="m"} {n}
ponder:request_prompt_tokens_sum{model_name="m"} {p}
# TYPE ponder:num_requests_waiting gauge
ponder:num_requests_waiting{model_name="m"} 3.0
# TYPE ponder:kv_cache_usage_perc gauge
ponder:kv_cache_usage_perc{model_name="m"} 0.25
"""


def metrics(a, b, n, s, p):
    text = TEXT
    for key, value in {"a": a, "b": b, "n": n, "s": s, "p": p}.items():
        text = text.replace("{" + key + "}", str(value))
    return text


def test_window_from_two_scrapes():
    before = parse_metrics(metrics(1, 2, 2, 0.2, 200))
    after = parse_metrics(metrics(3, 8, 12, 3.2, 1200))  # 10 new: 2 <= 0.1 s, 4 in (0.1, 0.5], 4 later
    w = window([before], [after], 5.0, ttft_slo=0.3, tpot_slo=1.0)
    assert w.requests == 10 and w.arrival_rate == 2.0 and w.mean_input_len == 100
    assert w.ttft_attainment == pytest.approx((2 + 4 * 0.5) / 10)  # interpolated inside (0.1, 0.5]
    assert w.mean_ttft_s == pytest.approx(0.3) and w.waiting == 3 and w.kv_usage == 0.25
    restarted = window([after], [before], 5.0, 0.3, 1.0)  # counters went back: a new process
    assert restarted.requests == 2
