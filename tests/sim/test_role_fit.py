"""Per-role step models: a decode worker's steps (tokens == sequences == samples) and a prefill
worker's (one prompt length) cannot tell some terms apart; with a prior they keep the prior's
split instead of splitting evenly (the degenerate per-role profiles of docs/results/disagg.md)."""

from __future__ import annotations

import pytest

from ponder.profiling.step_log import StepRecord
from ponder.profiling.step_model import StepModel, fit
from ponder.sim.cluster import ClusterSpec
from ponder.sim.validate import RealRequest, Run, calibrate_pd

TRUE = StepModel(overhead_s=0.02, per_token_s=0.001, per_seq_s=0.004, per_attn_s=1e-7, per_sample_s=0.0)


def decode_rows(model: StepModel) -> list[tuple[int, int, float, int, float]]:
    rows = []
    for batch in range(1, 9):
        for context in (100, 300, 600):
            attn = batch * (context + 0.5)
            rows.append((batch, batch, attn, batch, model.step_time(batch, batch, attn, batch)))
    return rows


def prefill_rows(model: StepModel, length: int = 512) -> list[tuple[int, int, float, int, float]]:
    attn = length * length / 2
    return [(length, 1, attn, 1, model.step_time(length, 1, attn, 1))] * 12


def test_decode_only_steps_keep_the_priors_split():
    rows = decode_rows(TRUE)
    even = fit(rows)  # no prior: tokens, sequences and samples get the same coefficient
    assert even.per_token_s == pytest.approx(even.per_seq_s, rel=1e-6)
    assert even.per_seq_s == pytest.approx(even.per_sample_s, rel=1e-6)
    prior = StepModel(0.03, 0.0012, 0.0035, 2e-7, 0.0)  # roughly right, from other steps
    fitted = fit(rows, prior=prior)
    # what the steps determine is fitted (a batch's cost, the intercept, attention) ...
    for tokens, seqs, attn, sampled, seconds in rows:
        assert fitted.step_time(tokens, seqs, attn, sampled) == pytest.approx(seconds, rel=1e-6)
    assert fitted.overhead_s == pytest.approx(TRUE.overhead_s, rel=1e-6)
    # ... and the split among the inseparable terms follows the prior, not an even third each
    assert fitted.per_token_s + fitted.per_seq_s + fitted.per_sample_s == pytest.approx(0.005, rel=1e-6)
    assert fitted.per_seq_s > 2 * fitted.per_token_s  # even: equal
    # a prefill chunk (tokens >> sequences) is then predicted from the prior's per-token cost
    attn = 256 * 128.0
    truth = TRUE.step_time(256, 1, attn, 1)
    assert abs(fitted.step_time(256, 1, attn, 1) - truth) < 0.5 * abs(even.step_time(256, 1, attn, 1) - truth)


def test_prefill_of_one_length_extrapolates_with_the_prior():
    rows = prefill_rows(TRUE)
    prior = StepModel(0.02, 0.0009, 0.004, 1e-7, 0.0)
    fitted = fit(rows, prior=prior)
    assert fitted.step_time(512, 1, 512 * 256.0, 1) == pytest.approx(rows[0][-1], rel=1e-6)
    long = TRUE.step_time(1024, 1, 1024 * 512.0, 1)
    assert fitted.step_time(1024, 1, 1024 * 512.0, 1) == pytest.approx(long, rel=0.1)


def test_calibrate_pd_uses_the_pooled_fit_as_prior():
    def records(rows, t0):
        return [
            StepRecord(t0 + i, seconds, tokens, seqs, sampled, attn, True)
            for i, (tokens, seqs, attn, sampled, seconds) in enumerate(rows)
        ]

    prefill = records(prefill_rows(TRUE, 512) + prefill_rows(TRUE, 200), 0.0)
    decode = records(decode_rows(TRUE), 100.0)
    run = Run("x", 0.0, 1.0, [RealRequest(0.0, 512, 8, 1.0, 0.05)])
    front, back = calibrate_pd(prefill, decode, [run], ClusterSpec(prefill=1, decode=1, budget=2048))
    # sequences and samples are equal in every step of both roles (no prompt spans two steps
    # here): only their sum is known; tokens are told apart by the prefill steps
    assert back.per_seq_s + back.per_sample_s == pytest.approx(TRUE.per_seq_s, rel=0.05)
    assert back.per_token_s == pytest.approx(TRUE.per_token_s, rel=0.05)
    assert front.step_time(1024, 1, 1024 * 512.0, 1) == pytest.approx(
        TRUE.step_time(1024, 1, 1024 * 512.0, 1), rel=0.05
    )
