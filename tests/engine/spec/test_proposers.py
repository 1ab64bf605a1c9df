"""The n-gram proposer, the acceptance controller and the metrics they feed."""

from __future__ import annotations

from pathlib import Path

import pytest

from ponder import LLM
from ponder.engine.sampling_params import SamplingParams
from ponder.engine.spec.controller import (
    MAX_PROBE_INTERVAL,
    PROBE_INTERVAL,
    AcceptanceController,
    ProbeSchedule,
    expected_tokens,
)
from ponder.engine.spec.cost import EXACT_PLAIN_GAP, StepCostModel
from ponder.engine.spec.ngram import NgramProposer
from ponder.openai.metrics import speculative_families


def test_ngram_proposes_what_followed_the_latest_match() -> None:
    proposer = NgramProposer(ngram_min=2, ngram_max=3)
    tokens = [1, 2, 3, 4, 9, 1, 2, 3, 5, 7, 1, 2, 3]
    assert proposer.propose_one(0, tokens, 3) == [5, 7, 1]  # the later "1 2 3" wins
    tokens += [5, 7]  # incremental: only new positions are indexed
    assert proposer.propose_one(0, tokens, 2) == [1, 2]
    assert proposer.propose_one(1, [1, 2, 3, 4], 3) == []  # no earlier occurrence
    assert proposer.propose_one(2, [8, 8, 8, 8], 4) == [8]  # overlapping match: what exists


def test_controller_switches_off_and_probes() -> None:
    controller = AcceptanceController(max_tokens=4)
    assert controller.num_tokens(0, 0.1, probe=False) > 0  # an optimistic start
    for _ in range(10):
        controller.observe(0, 4, 0)
    assert controller.acceptance(0) < 0.1
    assert controller.num_tokens(0, 0.1, probe=False) == 0  # off
    assert controller.num_tokens(0, 0.1, probe=True) == 1  # but it probes
    for _ in range(10):
        controller.observe(0, 4, 4)
    assert controller.num_tokens(0, 0.1, probe=False) == 4
    assert controller.best_k(0.9, 1.0) == 0  # a token costing a whole step never pays
    assert expected_tokens(0.5, 2) == 1.75


def _probe_steps(schedule: ProbeSchedule, num_steps: int, hopeless: bool = False) -> list[int]:
    return [step for step in range(1, num_steps + 1) if schedule.is_probe_step(hopeless)]


def test_probes_back_off_while_nobody_speculates_and_return_when_one_does() -> None:
    schedule = ProbeSchedule()
    first = PROBE_INTERVAL
    assert _probe_steps(schedule, 7 * first) == [first, 3 * first, 7 * first]  # 16, then 32, 64 apart
    schedule.speculating()  # a sequence drafts on its own again
    assert schedule.interval == PROBE_INTERVAL
    assert _probe_steps(schedule, first) == [first]
    for _ in range(12):
        _probe_steps(schedule, MAX_PROBE_INTERVAL)
    assert schedule.interval == MAX_PROBE_INTERVAL  # capped


def test_no_probe_where_even_perfect_acceptance_would_not_pay() -> None:
    schedule = ProbeSchedule()
    assert _probe_steps(schedule, PROBE_INTERVAL, hopeless=True) == []
    assert schedule.interval == MAX_PROBE_INTERVAL  # the next chance re-measures the cost
    assert _probe_steps(schedule, MAX_PROBE_INTERVAL) == [MAX_PROBE_INTERVAL]


def test_cost_model_learns_from_step_times() -> None:
    # plain steps take 1 s, steps with 4 drafts 3 s, but the first (a warm-up) 60 s
    times = iter([0.0, 1.0, 2.0, 62.0, 65.0, 68.0, 71.0, 72.0])
    model = StepCostModel(prior_cost_per_token=0.1, clock=lambda: next(times))
    assert model.cost_per_token(1) == 0.1 and model.wants_plain_step(1)  # nothing measured yet
    steps = [(0, True), (0, True), (4, True), (4, True), (4, True), (4, True), (0, False), (0, True)]
    for index, (drafts, pure_decode) in enumerate(steps):
        model.step_started(1, pure_decode)  # a step with a prefill chunk is never timed
        model.set_drafts(drafts)
        if index == 4:  # two samples, the warm-up one among them: not trusted yet
            assert model.cost_per_token(1) == 0.1
    assert model.cost_per_token(1) == pytest.approx(0.5)  # median of (3 / 1 - 1) / 4 and 14.75
    assert model.cost_per_token(8) == 0.1  # another batch-size bucket: still the prior
    assert not model.wants_plain_step(1)


def test_stats_and_metrics(qwen3_ckpt: Path) -> None:
    llm = LLM(
        str(qwen3_ckpt),
        num_kv_blocks=64,
        speculative_method="draft",
        speculative_model=str(qwen3_ckpt),
        speculative_adaptive=False,  # a self-draft never pays: the off-switch would stay off
    )
    llm.generate(
        ["Hello, how are you today?"], SamplingParams(temperature=0.0, max_tokens=40, ignore_eos=True)
    )
    stats = llm.engine.stats()
    assert stats.spec_verifications > 0
    assert stats.spec_accepted_tokens == stats.spec_draft_tokens  # self-drafting: all accepted
    assert stats.generation_tokens == 40
    families = {family.name: family for family in speculative_families({"m": stats})}
    rate = families["ponder:spec_decode_acceptance_rate"].samples[0].value
    length = families["ponder:spec_decode_mean_accepted_length"].samples[0].value
    assert rate == 1.0
    assert length == stats.spec_emitted_tokens / stats.spec_verifications > 1.0
    assert families["ponder:spec_decode_num_draft_tokens"].samples[0].value == stats.spec_draft_tokens


def test_metrics_endpoint(qwen3_ckpt: Path) -> None:
    import httpx

    from tests.server.harness import MODEL, real_engine, serve

    engine = real_engine(
        qwen3_ckpt,
        speculative_method="draft",
        speculative_model=str(qwen3_ckpt),
        speculative_adaptive=False,
        block_size=16,
    )
    with serve(engine) as server:
        body = {
            "model": MODEL,
            "prompt": "Hello, how are you",
            "max_tokens": 40,
            "temperature": 0,
            "ignore_eos": True,
        }
        assert httpx.post(f"{server.url}/v1/completions", json=body, timeout=60).status_code == 200
        text = httpx.get(f"{server.url}/metrics").text
    assert f'ponder:spec_decode_acceptance_rate{{model_name="{MODEL}"}} 1.0' in text
    assert "ponder:spec_decode_mean_accepted_length" in text
    assert "ponder:spec_decode_num_draft_tokens_total" in text


def test_best_k_is_the_argmax_of_tokens_per_cost() -> None:
    """The one-pass best_k picks what a brute-force argmax picks (smallest k on ties)."""
    controller = AcceptanceController(max_tokens=6)
    for acceptance in [i / 20 for i in range(21)]:
        for cost in (0.0, 0.05, 0.1, 0.3, 0.6, 0.99, 1.0, 2.0):
            gains = [expected_tokens(acceptance, k) / (1 + cost * k) for k in range(7)]
            best = max(range(7), key=lambda k: (round(gains[k], 12), -k))
            assert controller.best_k(acceptance, cost) == best, (acceptance, cost)
    assert controller.best_k(1.0, 0.0) == 6 and controller.best_k(0.0, 0.0) == 0
    assert controller.best_k(1.0, 1.0) == 0  # a draft that costs a whole step never pays


def test_cost_model_compares_verify_steps_with_plain_steps_of_their_batch_size() -> None:
    """Batch sizes 7 and 4 share a bucket; a step costs 1 s per sequence, and one draft per
    sequence makes it 1.5x. Judged against the 7-sequence plain step, 4-sequence verify steps
    would look free (c -> 0); the model measures a plain step at 4 too and reads c = 0.5."""
    now = [0.0]
    model = StepCostModel(prior_cost_per_token=0.1, clock=lambda: now[0])

    def step(num_seqs: int, verify_seconds: float) -> bool:
        model.step_started(num_seqs, pure_decode=True)  # the order Speculator.propose calls them
        plain = model.wants_plain_step(num_seqs)
        model.set_drafts(0 if plain else num_seqs)  # one draft per sequence
        now[0] += num_seqs if plain else verify_seconds
        return plain

    assert step(7, 10.5)  # the bucket's first step is plain
    assert not any(step(7, 10.5) for _ in range(4))
    plain_at_4 = [step(4, 6.0) for _ in range(EXACT_PLAIN_GAP + 12)]
    assert plain_at_4.count(True) == 1  # one plain step of the new size, once the gap allows
    assert plain_at_4.index(True) < EXACT_PLAIN_GAP
    step(4, 6.0)  # closes the last step
    assert model.cost_per_token(4) == pytest.approx(0.5)
    assert model.cost_per_token(7) == pytest.approx(0.5)
