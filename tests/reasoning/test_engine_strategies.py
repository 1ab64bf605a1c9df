"""Strategies on a real (tiny, random) engine: one prefill for n branches, stopped branches free
their KV, probes reuse the thought's KV, seeded runs repeat exactly, the server entry point."""

from __future__ import annotations

import asyncio

import pytest

from ponder import LLM, InvalidRequestError, SamplingParams
from ponder.engine.args import EngineArgs
from ponder.engine.async_engine import AsyncEngine
from ponder.engine.llm_engine import LLMEngine
from ponder.reasoning.controller import OfflineReasoner, run_strategy
from ponder.reasoning.inline_engine import InlineEngine
from ponder.reasoning.session import PROBE
from ponder.reasoning.specs import ProbePlan
from ponder.reasoning.strategies.probing import probe_token_ids

PROMPT = "Let me think step by step. First add 12 and 30 to get 42, then subtract"
THINKING_PROMPT = "The answer is 42. <think>\n"  # ends inside a thought: every token is reasoning


def make_engine(ckpt, **knobs) -> LLMEngine:
    return LLMEngine(
        EngineArgs.from_kwargs(
            str(ckpt), block_size=4, kv_cache_memory=1 << 24, **knobs
        ).create_engine_config()
    )


def sampled(**overrides) -> SamplingParams:
    return SamplingParams(
        **{"temperature": 1.0, "max_tokens": 24, "seed": 5, "ignore_eos": True, **overrides}
    )


def test_n_branches_prefill_the_prompt_once(qwen3_ckpt):
    engine = make_engine(qwen3_ckpt)
    prompt_ids = engine.tokenizer.encode(PROMPT)
    [result] = OfflineReasoner(engine).run_all([prompt_ids], sampled(), {"type": "self_consistency", "n": 8})
    stats = engine.stats()
    assert stats.prompt_tokens_computed == len(prompt_ids)
    assert result.usage.num_branches == 8
    assert stats.generation_tokens == result.usage.generated_tokens == 8 * 24
    assert stats.kv_blocks_used == 0


def test_stopping_a_branch_frees_its_blocks_at_once(qwen3_ckpt):
    engine = make_engine(qwen3_ckpt)
    inline = InlineEngine(engine)

    async def scenario():
        session = inline.session()
        handle = session.submit(engine.tokenizer.encode(PROMPT), sampled(n=4, max_tokens=40))
        while min(b.num_tokens for b in handle.branches) < 12:
            await session.wait()
        before = engine.stats().kv_blocks_used
        session.stop_branch(handle.branches[1])
        session.stop_branch(handle.branches[2])
        after_stop = engine.stats().kv_blocks_used
        await session.run_to_end(handle)
        inline.release(session)
        return handle, before, after_stop

    handle, before, after_stop = asyncio.run(scenario())
    # Each stopped branch held at least its own two full blocks of 12 generated tokens.
    assert after_stop <= before - 2 * 2
    assert [b.finish_reason for b in handle.branches] == ["length", "abort", "abort", "length"]
    assert handle.branches[1].stopped and handle.branches[1].num_tokens < 40
    assert engine.stats().kv_blocks_used == 0


def test_confidence_early_stop_stops_branches_and_frees_everything(qwen3_ckpt):
    engine = make_engine(qwen3_ckpt)
    spec = {"type": "confidence", "n": 8, "warmup": 2, "window": 4, "keep_top": 0.0, "consensus": 1.0}
    [result] = OfflineReasoner(engine).run_all([PROMPT], sampled(max_tokens=32), spec, chat=False)
    stopped = [b for b in result.branches if b.stopped]
    assert stopped and all(b.num_tokens < 32 for b in stopped)
    assert result.usage.num_stopped_branches == len(stopped)
    assert result.usage.generated_tokens == engine.stats().generation_tokens
    assert engine.stats().kv_blocks_used == 0


@pytest.mark.parametrize(("max_num_seqs", "sizes"), [(256, [6]), (4, [4, 2])])
def test_auto_waves_follow_the_engines_spare_seats(qwen3_ckpt, max_num_seqs, sizes):
    engine = make_engine(qwen3_ckpt, max_num_seqs=max_num_seqs)
    spec = {"type": "confidence", "n": 8, "warmup": 2, "wave": "auto", "consensus": 1.0}
    [result] = OfflineReasoner(engine).run_all([PROMPT], sampled(max_tokens=8), spec, chat=False)
    # After the warm-up the engine is empty: 256 seats take the 6 other branches at once; 4
    # seats take 4, then the last 2 (the smallest auto wave) once those have ended.
    assert result.details["wave_sizes"] == sizes and result.details["waves"] == len(sizes)
    assert result.usage.num_branches == 8
    assert engine.stats().spare_seats == max_num_seqs


def test_probes_reuse_the_live_thoughts_kv(qwen3_ckpt):
    engine = make_engine(qwen3_ckpt)
    spec = {"type": "answer_stability", "probe_every": 8, "agree": 50, "probe_max_tokens": 3}
    params = SamplingParams(temperature=0, max_tokens=48, ignore_eos=True)
    [result] = OfflineReasoner(engine).run_all([THINKING_PROMPT], params, spec, chat=False)
    stats = engine.stats()
    probes = result.usage.num_probes
    assert probes >= 4 and result.usage.probe_tokens > 0
    # Every probe after the first finds at least the thought's first 8 tokens (two full blocks).
    assert stats.prefix_cache_hits >= 8 * (probes - 1)
    # A probe computes its probe text and at most the thought's last token, never the tail of the
    # thought after its last full block (it takes the partly written block too).
    probe_text_ids = probe_token_ids(InlineEngine(engine).session(), ProbePlan(probe_every=8, agree=2))
    prompt_len = len(engine.tokenizer.encode(THINKING_PROMPT))
    assert stats.prompt_tokens_computed - prompt_len <= probes * (len(probe_text_ids) + 1)
    assert result.usage.reasoning_tokens == 48 and stats.kv_blocks_used == 0


@pytest.mark.parametrize("ahead", [True, False])
def test_a_probe_goes_ahead_of_waiting_requests(qwen3_ckpt, ahead):
    engine = make_engine(qwen3_ckpt, max_num_seqs=2)  # the thought and one more: the engine is full
    inline = InlineEngine(engine)
    greedy = SamplingParams(temperature=0, max_tokens=40, ignore_eos=True)

    async def scenario():
        session = inline.session()
        thought_prompt = engine.tokenizer.encode(THINKING_PROMPT)
        thought = session.submit(thought_prompt, greedy)
        while thought.branches[0].num_tokens < 4:
            await session.wait()
        session.submit(engine.tokenizer.encode(PROMPT), greedy)  # takes the free slot
        later = session.submit(engine.tokenizer.encode(PROMPT), greedy)  # waits for one
        probe = session.submit(
            thought_prompt + thought.branches[0].token_ids,
            SamplingParams(temperature=0, max_tokens=2),
            kind=PROBE,
            ahead=ahead,
        )
        while not probe.finished:
            await session.wait()
        started_before_probe = later.branches[0].num_tokens > 0
        while session.in_flight:
            await session.wait()
        inline.release(session)
        return started_before_probe

    # A probe that waited behind later requests would come back after its thought had ended.
    assert asyncio.run(scenario()) is not ahead


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "self_consistency", "n": 4, "vote": "confidence"},
        {"type": "confidence", "n": 6, "warmup": 2, "window": 4, "keep_top": 0.5},
        {"type": "answer_stability", "n": 2, "probe_every": 6, "agree": 2},
        {"type": "best_of_n", "n": 3},
    ],
)
def test_seeded_strategies_repeat_exactly(qwen3_ckpt, spec):
    prompts = [PROMPT, "Hello, how are you today?", THINKING_PROMPT]

    def once(concurrency: int, async_scheduling: bool = False):
        engine = make_engine(qwen3_ckpt, async_scheduling=async_scheduling)
        results = OfflineReasoner(engine).run_all(
            prompts, sampled(ignore_eos=False), spec, chat=False, concurrency=concurrency
        )
        return [(r.reasoning, r.content, r.answer, r.usage, [b.stopped for b in r.branches]) for r in results]

    first = once(3)
    assert first == once(3)
    # Seeded sampling is batch-independent, and so are the decisions made on each branch's tokens.
    assert first == once(1)
    # Asynchronous scheduling hands out each step's outputs once the next step is on its way:
    # runs still repeat exactly and alone or together. A stopped branch has the token computed
    # meanwhile discarded, so results equal synchronous scheduling's, except where requests of
    # one run meet in time: a probe starts a step later relative to its live thought.
    first_async = once(3, async_scheduling=True)
    assert first_async == once(3, async_scheduling=True) == once(1, async_scheduling=True)
    if spec["type"] != "answer_stability":
        assert first_async == first


def test_concurrent_runs_share_the_engines_batches(qwen3_ckpt):
    engine = make_engine(qwen3_ckpt)
    steps = 0
    step = engine.step

    def counted_step():
        nonlocal steps
        steps += 1
        return step()

    engine.step = counted_step
    prompts = [PROMPT, "Hello, how are you today?", THINKING_PROMPT, "Numbers like 0 1 2 3"]
    results = OfflineReasoner(engine).run_all(prompts, sampled(max_tokens=12), "single", chat=False)
    assert all(r.usage.generated_tokens == 12 for r in results)
    assert steps <= 12 + 2  # one batch for all four prompts, not one prompt after another


def test_llm_reason_runs_several_prompts(qwen3_ckpt):
    llm = LLM(str(qwen3_ckpt), block_size=4, kv_cache_memory=1 << 24)
    results = llm.reason(["Hi", "What is 6 * 7?"], "greedy", SamplingParams(max_tokens=8))
    assert len(results) == 2 and all(r.usage.num_branches == 1 for r in results)
    greedy = llm.generate(
        [
            {
                "prompt": "",
                "prompt_token_ids": llm.get_tokenizer().encode(
                    llm.get_tokenizer().apply_chat_template([{"role": "user", "content": "Hi"}]),
                    add_special_tokens=False,
                ),
            }
        ],
        SamplingParams(temperature=0, max_tokens=8),
    )
    completion = greedy[0].outputs[0]
    assert (results[0].reasoning, results[0].content) == (completion.reasoning, completion.content)


def test_server_entry_point_on_the_async_engine(qwen3_ckpt):
    async def scenario():
        engine = AsyncEngine(make_engine(qwen3_ckpt))
        try:
            prompt = {"prompt_token_ids": engine.tokenizer.encode(PROMPT)}
            results = await asyncio.gather(
                *(
                    run_strategy(engine, prompt, sampled(seed=i), {"type": "self_consistency", "n": 4})
                    for i in range(3)
                )
            )
            with pytest.raises(InvalidRequestError) as caught:
                await run_strategy(engine, prompt, sampled(), {"type": "self_consistency", "n": -1})
            for _ in range(100):
                if engine.stats().num_requests == 0:
                    break
                await asyncio.sleep(0.01)
            return results, caught.value, engine.stats()
        finally:
            await engine.shutdown()

    results, error, stats = asyncio.run(scenario())
    assert all(r.usage.num_branches == 4 and r.usage.generated_tokens == 4 * 24 for r in results)
    # Three requests of four branches: each prompt token is computed or found in the cache once
    # per request, never per branch.
    prompt_len = len(make_tokenizer_ids(qwen3_ckpt))
    assert stats.prompt_tokens_computed + stats.prefix_cache_hits == 3 * prompt_len
    assert error.param == "reasoning_strategy.n"
    assert stats.kv_blocks_used == 0


def test_probes_on_the_async_engine_name_their_thought(qwen3_ckpt, monkeypatch):
    """The server's engine gets each probe's `prefix_of` (the engine resolves it on its thread;
    on this tiny model a thought often ends before its probe is admitted, so the sharing itself
    is tested on the inline engine above)."""
    made = []

    async def scenario():
        engine = AsyncEngine(make_engine(qwen3_ckpt))
        make_request = engine.engine.make_request

        def spy(*args, **kwargs):
            request = make_request(*args, **kwargs)
            made.append(request)
            return request

        monkeypatch.setattr(engine.engine, "make_request", spy)
        try:
            prompt = {"prompt_token_ids": engine.tokenizer.encode(THINKING_PROMPT)}
            spec = {"type": "answer_stability", "probe_every": 4, "agree": 50, "probe_max_tokens": 2}
            params = SamplingParams(temperature=0, max_tokens=32, ignore_eos=True)
            result = await run_strategy(engine, prompt, params, spec)
            for _ in range(200):
                if engine.stats().num_requests == 0:
                    break
                await asyncio.sleep(0.01)
            return result, engine.stats()
        finally:
            await engine.shutdown()

    result, stats = asyncio.run(scenario())
    thought, *probes = made
    assert thought.prefix_of is None and len(probes) == result.usage.num_probes >= 1
    assert all(probe.prefix_of == (thought.request_id, 0) for probe in probes)
    assert stats.num_requests == 0 and stats.kv_blocks_used == 0


def test_cancelling_a_server_run_aborts_its_requests(qwen3_ckpt):
    async def scenario():
        engine = AsyncEngine(make_engine(qwen3_ckpt))
        try:
            prompt = {"prompt_token_ids": engine.tokenizer.encode(PROMPT)}
            task = asyncio.create_task(
                run_strategy(engine, prompt, sampled(max_tokens=400), {"type": "self_consistency", "n": 4})
            )
            while engine.stats().generation_tokens < 8:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            for _ in range(200):
                if engine.stats().num_requests == 0:
                    break
                await asyncio.sleep(0.01)
            return engine.stats()
        finally:
            await engine.shutdown()

    stats = asyncio.run(scenario())
    assert stats.num_requests == 0 and stats.kv_blocks_used == 0


def make_tokenizer_ids(ckpt) -> list[int]:
    from ponder.engine.tokenizer import Tokenizer

    return Tokenizer.from_dir(ckpt).encode(PROMPT)
