"""Asynchronous scheduling: step N + 1 launches before step N's tokens reach the host.

On the CPU nothing overlaps, but the bookkeeping is the same as on the GPU: the next step reads
its input tokens from the sampler's output tensor, tokens of sequences that ended meanwhile are
discarded, and every output must equal synchronous scheduling's.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from ponder import LLM, RequestOutputKind, SamplingParams
from ponder.config import SchedulerConfig
from ponder.engine.args import EngineArgs
from ponder.engine.llm_engine import LLMEngine
from ponder.errors import InvalidRequestError


def engine(ckpt, async_scheduling: bool, **knobs) -> LLMEngine:
    knobs = {"block_size": 4, "kv_cache_memory": 1 << 24, **knobs}
    return LLMEngine(
        EngineArgs.from_kwargs(str(ckpt), async_scheduling=async_scheduling, **knobs).create_engine_config()
    )


def record_executes(engine: LLMEngine) -> list[tuple[list[int], bool]]:
    """Per forward: each sequence's new-token count, and whether inputs came from the device."""
    calls = []
    execute = engine.runner.execute

    def recording(batch, pending=None):
        calls.append((list(batch.num_new_tokens), pending is not None))
        return execute(batch, pending)

    engine.runner.execute = recording
    return calls


def assert_no_blocks_held(engine: LLMEngine) -> None:
    pool = engine.kv.pool
    assert not any(pool.ref_counts) and pool.num_free_blocks == pool.num_blocks


def token_prompts(llm_or_engine, texts):
    tokenizer = llm_or_engine.get_tokenizer() if isinstance(llm_or_engine, LLM) else llm_or_engine.tokenizer
    return [{"prompt_token_ids": tokenizer.encode(text, add_special_tokens=False)} for text in texts]


THINK = "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n<think>\n"


def mixed_workload(stop_token: int, stop_text: str) -> list[tuple[str, SamplingParams]]:
    """Every kind of request the engine handles differently, in one batch."""
    sampled = dict(temperature=0.9, top_p=0.9, top_k=40)
    return [
        ("Hello", SamplingParams(temperature=0, max_tokens=24, ignore_eos=True, logprobs=2)),
        ("The quick brown fox", SamplingParams(**sampled, seed=3, max_tokens=20, ignore_eos=True)),
        ("Let me think", SamplingParams(**sampled, n=3, seed=5, max_tokens=16, ignore_eos=True)),
        ("The answer is", SamplingParams(temperature=0, max_tokens=20, stop=[stop_text], min_tokens=2)),
        ("The answer is", SamplingParams(temperature=0, max_tokens=30, stop_token_ids=[stop_token])),
        ("Hello, how are you", SamplingParams(temperature=0, max_tokens=18, repetition_penalty=1.3)),
        ("A reasoning model", SamplingParams(temperature=0, max_tokens=12, prompt_logprobs=2)),
        (THINK, SamplingParams(**sampled, seed=9, max_tokens=24, thinking_budget=5, ignore_eos=True)),
        (THINK, SamplingParams(temperature=0, max_tokens=20, thinking_budget=3, confidence_top_k=4)),
        ("Wait, let me check", SamplingParams(temperature=0, max_tokens=1, ignore_eos=True)),
        ("First add 12 and 30", SamplingParams(**sampled, seed=11, max_tokens=22, min_tokens=20)),
    ]


def comparable(outputs) -> list:
    """Everything an output carries, floats rounded (batch shapes may differ in the last bit)."""
    result = []
    for output in outputs:
        prompt_logprobs = [
            None if position is None else {t: round(p.logprob, 4) for t, p in position.items()}
            for position in output.prompt_logprobs or []
        ]
        for completion in output.outputs:
            logprobs = [
                {t: (round(p.logprob, 4), p.rank, p.decoded_token) for t, p in position.items()}
                for position in completion.logprobs or []
            ]
            confidences = [None if c is None else round(c, 4) for c in completion.confidences or []]
            result.append(
                (
                    completion.index,
                    completion.token_ids,
                    completion.text,
                    completion.finish_reason,
                    completion.stop_reason,
                    round(completion.cumulative_logprob, 3),
                    logprobs,
                    confidences,
                    completion.num_reasoning_tokens,
                    prompt_logprobs,
                )
            )
    return result


def run_workload(ckpt, async_scheduling: bool, **knobs):
    llm = LLM(str(ckpt), async_scheduling=async_scheduling, block_size=4, **knobs)
    # Stops the host can only see coming once the token is there: picked from a greedy probe.
    probe = SamplingParams(temperature=0, max_tokens=16, ignore_eos=True)
    probe_out = llm.generate(token_prompts(llm, ["The answer is"]), probe)[0].outputs[0]
    text = probe_out.text
    start = next(i for i in range(3, len(text)) if "\ufffd" not in text[i : i + 2])
    stop_token, stop_text = probe_out.token_ids[6], text[start : start + 2]
    calls = record_executes(llm.engine)
    texts, params = zip(*mixed_workload(stop_token, stop_text), strict=True)
    first = comparable(llm.generate(token_prompts(llm, texts), list(params)))
    second = comparable(llm.generate(token_prompts(llm, texts), list(params)))  # prefix hits
    return llm.engine, calls, first, second


@pytest.mark.parametrize(
    "knobs",
    [
        dict(kv_cache_memory=1 << 24),
        # 30 blocks of 4 tokens for ~600 tokens of work, 23-token steps: preemption and
        # chunked prefill next to decodes whose inputs are still on the device.
        dict(num_kv_blocks=30, max_num_batched_tokens=23, max_model_len=112),
    ],
    ids=["roomy", "preempting"],
)
def test_every_request_kind_gives_the_same_output_as_synchronous_scheduling(qwen3_ckpt, knobs):
    sync_engine, _, sync_first, sync_second = run_workload(qwen3_ckpt, False, **knobs)
    async_engine, calls, async_first, async_second = run_workload(qwen3_ckpt, True, **knobs)
    assert async_first == sync_first
    assert async_second == sync_second
    assert async_engine.stats().prefix_cache_hits > 0
    if "num_kv_blocks" in knobs:
        assert async_engine.stats().num_preemptions > 0
        # a step mixing prefill chunks with decodes whose input token is still on the device
        assert any(from_device and max(counts) > 1 for counts, from_device in calls)
    assert any(from_device for _, from_device in calls)
    assert async_engine.stats().generation_tokens == sync_engine.stats().generation_tokens
    assert_no_blocks_held(async_engine)


def test_outputs_arrive_one_step_after_their_step_launches(qwen3_ckpt):
    sync_engine, async_engine = engine(qwen3_ckpt, False), engine(qwen3_ckpt, True)
    params = SamplingParams(temperature=0, max_tokens=3, ignore_eos=True)
    counts = {}
    for name, eng in (("sync", sync_engine), ("async", async_engine)):
        calls = record_executes(eng)
        eng.add_request("r", "Hello", params)
        tokens_per_step = []
        while eng.has_unfinished_requests():
            outputs = eng.step()
            tokens_per_step.append([len(o.outputs[0].token_ids) for o in outputs])
        counts[name] = tokens_per_step
        # a decode step reads its input from the device only when scheduled asynchronously
        assert [from_device for _, from_device in calls] == [False, name == "async", name == "async"]
    assert counts["sync"] == [[1], [2], [3]]
    # The third token's step is the last one: the sequence ends there, so nothing runs after it.
    assert counts["async"] == [[], [1], [2], [3]]


def test_a_sequence_that_ends_early_has_its_extra_token_discarded(qwen3_ckpt):
    sync_engine, async_engine = engine(qwen3_ckpt, False), engine(qwen3_ckpt, True)
    probe = SamplingParams(temperature=0, max_tokens=8, ignore_eos=True)
    sync_engine.add_request("probe", "Hello", probe)
    tokens = []
    while sync_engine.has_unfinished_requests():
        tokens = [o.outputs[0].token_ids for o in sync_engine.step()] or tokens
    # a token that first comes a few steps in
    stop_at = next(t for i, t in enumerate(tokens[0]) if i >= 2 and t not in tokens[0][:i])
    params = SamplingParams(temperature=0, max_tokens=8, ignore_eos=True, stop_token_ids=[stop_at])
    results = {}
    for name, eng in (("sync", sync_engine), ("async", async_engine)):
        calls = record_executes(eng)
        generated_before = eng.stats().generation_tokens
        eng.add_request("r", "Hello", params)
        final = None
        while eng.has_unfinished_requests():
            final = next((o for o in eng.step() if o.finished), final)
        completion = final.outputs[0]
        results[name] = (completion.token_ids, completion.stop_reason, len(calls))
        assert eng.stats().generation_tokens - generated_before == len(completion.token_ids)
        assert_no_blocks_held(eng)
    assert results["sync"][:2] == results["async"][:2]
    assert results["sync"][0] == tokens[0][: tokens[0].index(stop_at) + 1]
    # The host learnt of the stop token one step late: one more forward ran, its token dropped.
    assert results["async"][2] == results["sync"][2] + 1


def test_aborts_and_stopped_branches_mid_flight_free_every_block(qwen3_ckpt):
    eng = engine(qwen3_ckpt, True, num_kv_blocks=40, max_model_len=64)
    long = SamplingParams(temperature=0, max_tokens=40, ignore_eos=True)
    branches = SamplingParams(n=3, temperature=1.0, seed=2, max_tokens=40, ignore_eos=True)
    for i in range(4):
        eng.add_request(f"r{i}", f"Hello {i}", long)
    eng.add_request("branches", "Let me think", branches)
    finished = {}
    for step in range(60):
        for output in eng.step():
            if output.finished:
                finished[output.request_id] = output
        if step == 4:
            assert eng._inflight is not None  # the abort lands while a step is on the device
            aborted = eng.abort_request("r1")
            assert aborted.finished and aborted.outputs[0].finish_reason == "abort"
            stopped = eng.stop_sequence("branches", 1)
            assert stopped.outputs[1].finish_reason == "abort"
        if step == 7:
            eng.abort_request("r3")
        if not eng.has_unfinished_requests():
            break
    assert not eng.has_unfinished_requests()
    assert set(finished) == {"r0", "r2", "branches"}
    assert [len(c.token_ids) for c in finished["branches"].outputs] == [40, 4, 40]
    assert eng.stats().num_preemptions > 0
    assert_no_blocks_held(eng)


def test_penalties_make_their_step_synchronous(qwen3_ckpt):
    penalized = SamplingParams(temperature=0, max_tokens=6, ignore_eos=True, frequency_penalty=1.5)
    plain = SamplingParams(temperature=0, max_tokens=6, ignore_eos=True)
    results = {}
    for async_scheduling in (False, True):
        eng = engine(qwen3_ckpt, async_scheduling)
        calls = record_executes(eng)
        eng.add_request("penalized", "Hello", penalized)
        eng.add_request("plain", "world", plain)
        outputs = {}
        while eng.has_unfinished_requests():
            outputs.update((o.request_id, o.outputs[0].token_ids) for o in eng.step() if o.finished)
        results[async_scheduling] = outputs
        # the penalized sequence's tokens must be on the host before each of its steps
        assert not any(from_device for _, from_device in calls)
    assert results[True] == results[False]


def test_delta_streams_add_up_to_the_final_text(qwen3_ckpt):
    eng = engine(qwen3_ckpt, True)
    delta = SamplingParams(
        temperature=0, max_tokens=15, ignore_eos=True, stop=["1"], output_kind=RequestOutputKind.DELTA
    )
    final = SamplingParams(temperature=0, max_tokens=15, ignore_eos=True, stop=["1"])
    eng.add_request("delta", "Numbers like 0 1 2", delta)
    eng.add_request("final", "Numbers like 0 1 2", final)
    text, token_ids, last = "", [], {}
    while eng.has_unfinished_requests():
        for output in eng.step():
            if output.request_id == "delta":
                text += output.outputs[0].text
                token_ids += output.outputs[0].token_ids
            last[output.request_id] = output
    assert last["delta"].finished and last["final"].finished
    assert (text, token_ids) == (last["final"].outputs[0].text, last["final"].outputs[0].token_ids)


def test_off_by_default_on_cpu_and_the_cli_flag_turns_it_on_or_off(qwen3_ckpt):
    import argparse

    parser = argparse.ArgumentParser()
    EngineArgs.add_cli_args(parser)

    def parsed(*flags: str) -> bool | None:
        return EngineArgs.from_cli_args(parser.parse_args(list(flags))).async_scheduling

    assert parsed() is None
    assert parsed("--async-scheduling") is True
    assert parsed("--no-async-scheduling") is False
    assert not LLMEngine(
        EngineArgs.from_kwargs(str(qwen3_ckpt), kv_cache_memory=1 << 24).create_engine_config()
    ).async_scheduling
    assert engine(qwen3_ckpt, True).async_scheduling


def test_small_steps_stay_synchronous_on_cuda_only(qwen3_ckpt, monkeypatch):
    """On CUDA a step of fewer than async_min_batch_size sequences is finished at once (a
    single sequence measured slower kept in flight); on the CPU every step stays in flight."""
    async_engine = engine(qwen3_ckpt, True)
    step = SimpleNamespace(batch=SimpleNamespace(seqs=[object()] * 3))
    assert async_engine._keep_in_flight(step)
    monkeypatch.setattr(async_engine, "device", torch.device("cuda"))
    assert not async_engine._keep_in_flight(step)
    step.batch.seqs.append(object())
    assert async_engine._keep_in_flight(step)


def test_async_min_batch_size_is_validated():
    with pytest.raises(InvalidRequestError, match="async_min_batch_size"):
        SchedulerConfig(async_min_batch_size=0)
