"""Speculation under asynchronous scheduling (the GPU default; on the CPU it runs when asked for,
with the same bookkeeping): greedy output stays identical, drafting still happens where it pays,
and where it is switched off the steps stay in flight as a plain engine's do."""

from __future__ import annotations

from ponder import LLM
from ponder.engine.sampling_params import SamplingParams

REPETITIVE = "Let me think step by step. 12 + 30 = 42. 42 - 7 = 35. Let me check: 12 + 30 = 42. 42 - 7 ="
PROMPTS = [REPETITIVE, "Let me check: 6 times 7 is", "Count: 1 2 3 4 5 6 7 8 9"]
POOL = {"num_kv_blocks": 96, "max_model_len": 256, "async_scheduling": True}
PARAMS = SamplingParams(temperature=0.0, max_tokens=24, ignore_eos=True)


def run(llm: LLM) -> tuple[list[list[int]], float]:
    """Greedy token ids per prompt, and the share of steps that left a step in flight that the
    next one need not wait for (the host schedules it while the device runs this one)."""
    engine = llm.engine
    for index, prompt in enumerate(PROMPTS):
        engine.add_request(f"r{index}", prompt, PARAMS)
    outputs: dict[str, list[int]] = {}
    steps = in_flight = 0
    while engine.has_unfinished_requests():
        for out in engine.step():
            if out.finished:
                outputs[out.request_id] = list(out.outputs[0].token_ids)
        steps += 1
        in_flight += engine._inflight is not None and not engine._inflight.needs_tokens_on_host
    return [outputs[f"r{i}"] for i in range(len(PROMPTS))], in_flight / steps


def test_drafting_under_async_scheduling_keeps_greedy_output() -> None:
    expected, plain_share = run(LLM(**POOL))
    assert plain_share > 0.5  # the plain engine keeps most steps in flight
    llm = LLM(speculative_method="ngram", num_speculative_tokens=3, speculative_adaptive=False, **POOL)
    tokens, _ = run(llm)
    assert tokens == expected
    stats = llm.engine.stats()
    assert stats.spec_draft_tokens > 0 and stats.spec_accepted_tokens > 0


def test_switched_off_speculation_keeps_steps_in_flight() -> None:
    expected, plain_share = run(LLM(**POOL))
    # a prior cost no acceptance can repay: the switch is off (and probes are hopeless) from the start
    off = LLM(speculative_method="ngram", speculative_token_cost=10.0, **POOL)
    tokens, off_share = run(off)
    assert tokens == expected and off.engine.stats().spec_draft_tokens == 0
    assert off_share >= 0.8 * plain_share
    # above the batch limit no step drafts either
    big = LLM(speculative_method="ngram", speculative_disable_batch_size=1, **POOL)
    tokens, big_share = run(big)
    assert tokens == expected and big_share >= 0.8 * plain_share
    # while drafting every step, a step is finished before the next is scheduled
    always = LLM(speculative_method="ngram", speculative_adaptive=False, **POOL)
    _, always_share = run(always)
    assert always_share < 0.5 * off_share


def test_a_deferred_probe_happens_in_the_next_step_with_the_same_interval() -> None:
    from ponder.engine.spec.controller import PROBE_INTERVAL, ProbeSchedule

    probes = ProbeSchedule()
    assert not any(probes.is_probe_step(hopeless=False) for _ in range(PROBE_INTERVAL - 1))
    assert probes.is_probe_step(hopeless=False)
    probes.defer()  # its sequences still had their tokens on the device
    assert probes.interval == PROBE_INTERVAL
    assert probes.is_probe_step(hopeless=False)
    assert probes.interval == 2 * PROBE_INTERVAL  # the doubling happens once, on the real probe
