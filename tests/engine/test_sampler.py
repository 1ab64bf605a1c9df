"""Tests for the sampler: support restrictions, distribution, penalties, seeds, logprobs."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ponder.engine.logprobs import prompt_logprobs
from ponder.engine.sampler import (
    Sampler,
    SamplingRow,
    apply_penalties,
    make_generator,
)
from ponder.engine.sampling_params import SamplingParams

VOCAB = 16
# Chi-square critical values at p = 0.001 (df = VOCAB - 1 = 15 and df = 4): a correct sampler
# fails these with probability 1/1000, and each test uses a fixed seed, so never flakes.
CHI2_CRITICAL_DF15 = 37.70
CHI2_CRITICAL_DF4 = 18.47


def fixed_logits(vocab: int = VOCAB, seed: int = 0, scale: float = 1.5) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(vocab, generator=generator) * scale


def row(params: SamplingParams, prompt=(), output=(), eos=frozenset(), generator=None):
    return SamplingRow(params, [*prompt, *output], len(prompt), generator, frozenset(eos))


def sample_many(logits_row: torch.Tensor, params: SamplingParams, n: int, seed: int = 0):
    sampler = Sampler(seed=seed)
    logits = logits_row.expand(n, -1).contiguous()
    return sampler(logits, [row(params) for _ in range(n)]).token_ids


def chi_square(samples: list[int], probs: torch.Tensor) -> float:
    observed = torch.bincount(torch.tensor(samples), minlength=probs.numel()).double()
    expected = probs.double() * len(samples)
    keep = expected > 0
    assert observed[~keep].sum() == 0, "sampled a token of probability 0"
    return float(((observed[keep] - expected[keep]) ** 2 / expected[keep]).sum())


def test_greedy_is_argmax_and_draws_no_randomness():
    logits = torch.randn(6, VOCAB, generator=torch.Generator().manual_seed(1))
    generator = make_generator(7, "cpu")
    state_before = generator.get_state()
    rows = [row(SamplingParams(temperature=0.0)) for _ in range(5)]
    rows.append(row(SamplingParams(temperature=0.0, seed=7), generator=generator))
    sampler = Sampler()
    out = sampler(logits, rows)
    assert out.token_ids == logits.argmax(dim=-1).tolist()
    assert torch.equal(generator.get_state(), state_before)
    assert not sampler._generators  # the global generator was never even created


def test_unrestricted_sampling_matches_softmax():
    logits = fixed_logits()
    for temperature in (1.0, 0.6):
        samples = sample_many(logits, SamplingParams(temperature=temperature), 20000)
        probs = torch.softmax(logits / temperature, dim=-1)
        assert chi_square(samples, probs) < CHI2_CRITICAL_DF15


def test_sampling_can_fail_the_distribution_check():
    # The check has teeth: samples at temperature 1 do not pass as temperature 0.5 samples.
    logits = fixed_logits()
    samples = sample_many(logits, SamplingParams(temperature=1.0), 20000)
    assert chi_square(samples, torch.softmax(logits / 0.5, dim=-1)) > CHI2_CRITICAL_DF15


def test_top_k_support_and_renormalised_distribution():
    logits = fixed_logits()
    top5 = logits.topk(5).indices
    samples = sample_many(logits, SamplingParams(top_k=5), 20000)
    assert set(samples) == set(top5.tolist())
    probs = torch.zeros(VOCAB)
    probs[top5] = torch.softmax(logits[top5], dim=-1)
    assert chi_square(samples, probs) < CHI2_CRITICAL_DF4


def nucleus(logits: torch.Tensor, top_p: float) -> set[int]:
    probs = torch.softmax(logits.double(), dim=-1)
    order = probs.argsort(descending=True).tolist()
    kept, mass = set(), 0.0
    for token in order:
        if mass >= top_p:
            break
        kept.add(token)
        mass += float(probs[token])
    return kept


@pytest.mark.parametrize("top_p", [0.3, 0.75, 0.95])
def test_top_p_support(top_p):
    logits = fixed_logits(seed=3)
    samples = set(sample_many(logits, SamplingParams(top_p=top_p), 4000))
    assert samples == nucleus(logits, top_p)


def test_min_p_support():
    logits = fixed_logits(seed=4)
    probs = torch.softmax(logits, dim=-1)
    allowed = set(torch.nonzero(probs >= 0.2 * probs.max()).flatten().tolist())
    samples = set(sample_many(logits, SamplingParams(min_p=0.2), 4000))
    assert samples == allowed


def test_tiny_top_p_keeps_the_top_token():
    logits = fixed_logits(seed=5)
    assert set(sample_many(logits, SamplingParams(top_p=1e-9), 200)) == {int(logits.argmax())}


def test_ties_at_the_cut_are_all_kept():
    logits = torch.tensor([3.0, 2.0, 2.0, 2.0, 0.0, -1.0])
    assert set(sample_many(logits, SamplingParams(top_k=2), 3000)) == {0, 1, 2, 3}
    # p(0) ~ 0.48 < 0.5, so the nucleus needs the next token, and its two twins come along.
    assert set(sample_many(logits, SamplingParams(top_p=0.5), 3000)) == {0, 1, 2, 3}


def test_combined_filters_apply_in_order():
    logits = torch.tensor([4.0, 3.9, 3.0, 1.0, 0.5, 0.0, -2.0, -3.0])
    params = SamplingParams(temperature=0.5, top_k=4, top_p=0.9, min_p=0.05)
    scaled = logits[:4] / 0.5  # after temperature and top-k
    probs = torch.softmax(scaled, dim=-1)
    expected = {t for t in nucleus(scaled, 0.9) if probs[t] >= 0.05 * probs.max()}
    assert set(sample_many(logits, params, 3000)) == expected


def test_penalties_match_hand_computed_values():
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0, -2.0, 1.0], [2.0, -1.0, 0.5, 3.0, -2.0, 1.0]])
    rows = [
        row(SamplingParams(repetition_penalty=2.0), prompt=[0, 1], output=[1, 2]),
        row(
            SamplingParams(frequency_penalty=0.5, presence_penalty=0.25),
            prompt=[3],
            output=[0, 0, 4],
        ),
    ]
    apply_penalties(logits, rows)
    # Row 0: tokens 0, 1, 2 seen: positive logits halve, negative ones double.
    assert logits[0].tolist() == [1.0, -2.0, 0.25, 3.0, -2.0, 1.0]
    # Row 1: token 0 twice (2 * 0.5 + 0.25), token 4 once (0.5 + 0.25); prompt tokens untouched.
    assert logits[1].tolist() == pytest.approx([2.0 - 1.25, -1.0, 0.5, 3.0, -2.0 - 0.75, 1.0])


def test_rows_without_penalties_are_untouched():
    logits = torch.randn(2, VOCAB)
    before = logits.clone()
    apply_penalties(logits, [row(SamplingParams(), prompt=[1, 2], output=[3])] * 2)
    assert torch.equal(logits, before)


def test_min_tokens_masks_eos_and_stop_token_ids():
    logits = torch.zeros(1, VOCAB)
    logits[0, 3] = 10.0  # eos
    logits[0, 5] = 9.0  # a stop token
    logits[0, 7] = 8.0
    params = SamplingParams(temperature=0.0, min_tokens=3, stop_token_ids=[5])
    sampler = Sampler()
    assert sampler(logits, [row(params, output=[1], eos={3})]).token_ids == [7]
    assert sampler(logits, [row(params, output=[1, 1, 1], eos={3})]).token_ids == [3]
    ignoring = SamplingParams(temperature=0.0, min_tokens=3, stop_token_ids=[5], ignore_eos=True)
    assert sampler(logits, [row(ignoring, output=[1], eos={3})]).token_ids == [3]
    logits[0, 3] = 0.0
    assert sampler(logits, [row(ignoring, output=[1], eos={3})]).token_ids == [7]


def run_seeded(seed: int, steps: int, batch_position: int, batch_size: int) -> list[int]:
    """Tokens of one seeded row over several steps, surrounded by other kinds of rows."""
    generator = make_generator(seed, "cpu")
    sampler = Sampler(seed=batch_size)  # the other rows' randomness differs per batch
    params = SamplingParams(temperature=0.9, top_p=0.95, top_k=12, seed=seed)
    logits_source = torch.Generator().manual_seed(99)
    tokens = []
    for step in range(steps):
        logits = torch.randn(batch_size, 64, generator=logits_source)
        ours = fixed_logits(64, seed=step, scale=2.0)
        logits[batch_position] = ours
        rows = []
        for i in range(batch_size):
            if i == batch_position:
                rows.append(row(params, output=tokens, generator=generator))
            elif i % 3 == 0:
                rows.append(row(SamplingParams(temperature=0.0)))
            elif i % 3 == 1:
                rows.append(row(SamplingParams(seed=i), generator=make_generator(1000 + i, "cpu")))
            else:
                rows.append(row(SamplingParams(temperature=1.3, min_p=0.01)))
        tokens.append(sampler(logits, rows).token_ids[batch_position])
    return tokens


def test_seeded_row_is_batch_invariant():
    alone = run_seeded(seed=42, steps=12, batch_position=0, batch_size=1)
    assert run_seeded(seed=42, steps=12, batch_position=3, batch_size=7) == alone
    assert run_seeded(seed=42, steps=12, batch_position=8, batch_size=9) == alone
    assert run_seeded(seed=43, steps=12, batch_position=0, batch_size=1) != alone


def test_logprobs_are_raw_and_ranked():
    logits = torch.randn(3, 40, generator=torch.Generator().manual_seed(2))
    rows = [
        row(SamplingParams(logprobs=5, temperature=0.3, repetition_penalty=1.5), output=[1, 2]),
        row(SamplingParams(logprobs=0)),
        row(SamplingParams()),
    ]
    out = Sampler(seed=0)(logits, rows)
    expected = torch.log_softmax(logits, dim=-1)
    for i, token in enumerate(out.token_ids):
        assert out.logprobs[i] == pytest.approx(float(expected[i, token]), abs=1e-6)
    assert out.top_logprobs[2] is None
    assert list(out.top_logprobs[1]) == [out.token_ids[1]]
    first = out.top_logprobs[0]
    assert next(iter(first)) == out.token_ids[0]  # the chosen token comes first
    top5 = expected[0].topk(5).indices.tolist()
    assert set(first) == set(top5) | {out.token_ids[0]}
    for token, entry in first.items():
        assert entry.logprob == pytest.approx(float(expected[0, token]), abs=1e-6)
        assert entry.rank == int((expected[0] > expected[0, token]).sum()) + 1
        assert entry.decoded_token is None


def test_confidence_is_negative_mean_of_top_k_logprobs():
    logits = torch.randn(2, 50, generator=torch.Generator().manual_seed(3))
    rows = [row(SamplingParams(confidence_top_k=10)), row(SamplingParams(confidence_top_k=3))]
    out = Sampler(seed=0)(logits, rows)
    logprobs = torch.log_softmax(logits, dim=-1)
    for i, k in enumerate((10, 3)):
        assert out.confidences[i] == pytest.approx(-float(logprobs[i].topk(k).values.mean()), 1e-6)
    assert Sampler()(logits, [row(SamplingParams())] * 2).confidences == [None, None]


def test_prompt_logprobs():
    logits = torch.randn(4, 30, generator=torch.Generator().manual_seed(4))
    next_ids = [5, 0, 29, 7]
    entries = prompt_logprobs(logits, next_ids, k=2)
    logprobs = torch.log_softmax(logits, dim=-1)
    for position, (entry, token) in enumerate(zip(entries, next_ids, strict=True)):
        assert next(iter(entry)) == token
        assert set(entry) == {token, *logprobs[position].topk(2).indices.tolist()}
        for token_id, logprob in entry.items():
            assert logprob.logprob == pytest.approx(float(logprobs[position, token_id]), abs=1e-6)
            assert logprob.rank == int((logprobs[position] > logprobs[position, token_id]).sum()) + 1


def reference_support(logits: torch.Tensor, params: SamplingParams, output: list[int]) -> set[int]:
    """A slow float64 re-statement of the sampling rules, loosened by a hair at every cut so
    float32 rounding in the sampler never lands outside it."""
    values = logits.double().tolist()
    counts = {t: output.count(t) for t in set(output)}
    for token, count in counts.items():
        if params.repetition_penalty != 1.0:
            r = params.repetition_penalty
            values[token] = values[token] / r if values[token] > 0 else values[token] * r
        values[token] -= params.frequency_penalty * count + params.presence_penalty
    if params.greedy:
        best = max(values)
        return {t for t, v in enumerate(values) if v >= best - 1e-4}
    values = [v / params.temperature for v in values]
    candidates = set(range(len(values)))
    if params.top_k > 0:
        kth = sorted(values, reverse=True)[min(params.top_k, len(values)) - 1]
        candidates = {t for t in candidates if values[t] >= kth - 1e-4}
    if params.top_p < 1.0:
        peak = max(values[t] for t in candidates)
        weights = {t: math.exp(values[t] - peak) for t in candidates}
        total = sum(weights.values())
        mass, cutoff = 0.0, math.inf
        for token in sorted(candidates, key=lambda t: -values[t]):
            if mass >= params.top_p + 1e-4:
                break
            cutoff = values[token]
            mass += weights[token] / total
        candidates = {t for t in candidates if values[t] >= cutoff - 1e-4}
    if params.min_p > 0.0:
        peak = max(values[t] for t in candidates)
        limit = peak + math.log(params.min_p) - 1e-4
        candidates = {t for t in candidates if values[t] >= limit}
    return candidates


@settings(max_examples=60, deadline=None)
@given(
    logits_seed=st.integers(0, 2**31 - 1),
    scale=st.floats(0.1, 8.0),
    temperature=st.sampled_from([0.0, 0.05, 0.5, 1.0, 1.7]),
    top_k=st.sampled_from([0, 1, 2, 5, 31, 40]),
    top_p=st.floats(0.01, 1.0),
    min_p=st.sampled_from([0.0, 0.01, 0.3, 0.9, 1.0]),
    repetition_penalty=st.sampled_from([1.0, 0.7, 1.3]),
    frequency_penalty=st.floats(-2.0, 2.0),
    presence_penalty=st.floats(-2.0, 2.0),
    output=st.lists(st.integers(0, 31), max_size=8),
    seed=st.integers(0, 2**31 - 1),
)
def test_sampled_token_is_always_allowed(
    logits_seed, scale, output, seed, temperature, top_k, top_p, min_p, **penalties
):
    params = SamplingParams(
        temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p, seed=seed, **penalties
    )
    logits = fixed_logits(32, seed=logits_seed, scale=scale)
    allowed = reference_support(logits, params, output)
    rows = [row(params, output=output, generator=make_generator(seed + i, "cpu")) for i in range(8)]
    sampled = Sampler(seed=seed)(logits.expand(8, -1).contiguous(), rows).token_ids
    assert set(sampled) <= allowed
