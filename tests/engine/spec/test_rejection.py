"""Speculative sampling keeps the target's distribution: chi-square tests on a tiny vocabulary."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from ponder import LLM
from ponder.engine.sampling_params import SamplingParams
from ponder.engine.spec.rejection import accepted_prefix, rejection_sample

# Critical chi-square values at p = 0.001: a correct sampler fails one run in a thousand.
CHI2_CRITICAL = {2: 13.82, 3: 16.27, 4: 18.47, 8: 26.12}


def chi_square(counts: Counter, probs: torch.Tensor, total: int) -> float:
    expected = probs * total
    return float(sum((counts.get(i, 0) - e) ** 2 / e for i, e in enumerate(expected.tolist()) if e > 0))


P = torch.tensor([[0.5, 0.2, 0.2, 0.1, 0.0], [0.1, 0.1, 0.3, 0.25, 0.25], [0.2, 0.2, 0.2, 0.2, 0.2]])
Q = torch.tensor([[0.1, 0.6, 0.1, 0.1, 0.1], [0.2, 0.2, 0.2, 0.2, 0.2]])


@pytest.mark.parametrize("point_drafts", [False, True], ids=["sampled-q", "delta-q"])
def test_rejection_sample_preserves_target(point_drafts: bool) -> None:
    generator = torch.Generator().manual_seed(0)
    drafts = [1, 2]  # point drafts are fixed guesses; sampled drafts are drawn from q each time
    first: Counter = Counter()
    second: Counter = Counter()  # the token after an accepted first draft
    outcomes: Counter = Counter()
    trials = 20000
    for _ in range(trials):
        if not point_drafts:
            drafts = [int(torch.multinomial(row, 1, generator=generator)) for row in Q]
        out = rejection_sample(P, drafts, None if point_drafts else Q, generator)
        first[out[0]] += 1
        if len(out) > 1:  # the first draft was accepted; the second position follows P[1]
            second[out[1]] += 1
        outcomes[accepted_prefix(out, drafts)] += 1
    assert chi_square(first, P[0], trials) < CHI2_CRITICAL[3]  # token 4 has p = 0: 4 cells
    assert chi_square(second, P[1], sum(second.values())) < CHI2_CRITICAL[4]
    assert outcomes[0] > 0 and outcomes[2] > 0  # both the reject and the accept path ran


def test_rejection_sample_checks_shapes() -> None:
    with pytest.raises(ValueError, match="rows"):
        rejection_sample(P[:2], [1, 2], None)


def test_engine_sampling_matches_plain_sampling() -> None:
    """The engine's verification (sample each position, keep while the draft matched) against
    plain sampling: the joint distribution of output tokens 3 and 4 (the first ones verified: the first
    decode step runs plain, to time it)
    must agree. top_k=3 keeps the table small; the built-in model drafts for itself at 2 of its
    8 layers, so drafts are both accepted and rejected (and the small pool preempts too)."""
    params = SamplingParams(n=200, temperature=1.0, top_k=3, max_tokens=6, ignore_eos=True, seed=1)
    prompt = ["Let me check: 6 times 7 is"]
    pool = {"num_kv_blocks": 256, "max_model_len": 128}
    plain = LLM(**pool).generate(prompt, params)[0]
    spec_llm = LLM(speculative_method="draft", speculative_disable_batch_size=512, **pool)
    spec = spec_llm.generate(prompt, params)[0]
    stats = spec_llm.engine.stats()
    assert 0 < stats.spec_accepted_tokens < stats.spec_draft_tokens

    def pairs(output) -> Counter:
        return Counter(tuple(sample.token_ids[2:4]) for sample in output.outputs)

    a, b = pairs(plain), pairs(spec)
    cells = sorted(set(a) | set(b))
    # Two-sample chi-square on the contingency table (2 x cells).
    total_a, total_b = sum(a.values()), sum(b.values())
    statistic = 0.0
    for cell in cells:
        row = a[cell] + b[cell]
        for count, total in ((a[cell], total_a), (b[cell], total_b)):
            expected = row * total / (total_a + total_b)
            statistic += (count - expected) ** 2 / expected
    degrees = len(cells) - 1
    assert degrees <= 8
    assert statistic < CHI2_CRITICAL.get(degrees, 26.12)
