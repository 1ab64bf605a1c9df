"""AsyncEngine: concurrent streams, deltas, abort frees KV, stats, engines side by side."""

import asyncio

import pytest

from ponder import LLM, InvalidRequestError, RequestOutputKind, SamplingParams
from ponder.engine.args import EngineArgs
from ponder.engine.async_engine import AsyncEngine
from ponder.engine.llm_engine import LLMEngine


def make_engine(ckpt, async_scheduling: bool) -> AsyncEngine:
    config = EngineArgs.from_kwargs(
        str(ckpt), block_size=4, kv_cache_memory=1 << 24, async_scheduling=async_scheduling
    ).create_engine_config()
    return AsyncEngine(LLMEngine(config))


def test_concurrent_streams_match_offline_generate(qwen3_ckpt, async_scheduling):
    prompts = ["Hello", "The quick brown fox", "Let me think step by step", "Numbers like 0 1 2"]
    greedy = SamplingParams(temperature=0, max_tokens=10, ignore_eos=True)
    offline = [o.outputs[0].text for o in LLM(str(qwen3_ckpt)).generate(prompts, greedy)]

    async def run():
        engine = make_engine(qwen3_ckpt, async_scheduling)
        delta = SamplingParams(
            temperature=0, max_tokens=10, ignore_eos=True, output_kind=RequestOutputKind.DELTA
        )

        async def consume(i):
            text, token_count = "", 0
            async for out in engine.add_request(f"req-{i}", prompts[i], delta):
                text += out.outputs[0].text
                token_count += len(out.outputs[0].token_ids)
            return text, token_count

        results = await asyncio.gather(*(consume(i) for i in range(len(prompts))))
        stats = engine.stats()
        await engine.shutdown()
        return results, stats

    results, stats = asyncio.run(run())
    assert [text for text, _ in results] == offline
    assert all(count == 10 for _, count in results)
    assert stats.generation_tokens == 40


def test_abort_frees_blocks_and_other_requests_continue(qwen3_ckpt, async_scheduling):
    async def run():
        engine = make_engine(qwen3_ckpt, async_scheduling)
        long = SamplingParams(temperature=0, max_tokens=400, ignore_eos=True)
        short = SamplingParams(temperature=0, max_tokens=5, ignore_eos=True)
        stream = engine.add_request("long", "Hello", long)
        await stream.__anext__()
        other = engine.add_request("short", "world", short)
        stream.abort()
        outputs = [out async for out in other]
        for _ in range(100):
            stats = engine.stats()
            if stats.num_requests == 0:
                break
            await asyncio.sleep(0.02)
        await engine.shutdown()
        return outputs, stats

    outputs, stats = asyncio.run(run())
    assert outputs[-1].finished and len(outputs[-1].outputs[0].token_ids) == 5
    assert stats.num_requests == 0 and stats.kv_blocks_used == 0


def test_generate_aborts_when_the_consumer_stops_early(qwen3_ckpt, async_scheduling):
    async def run():
        engine = make_engine(qwen3_ckpt, async_scheduling)
        params = SamplingParams(temperature=0, max_tokens=500, ignore_eos=True)
        agen = engine.generate("Hello", params, request_id="x")
        async for _ in agen:
            break
        await agen.aclose()
        for _ in range(100):
            if engine.stats().num_requests == 0:
                break
            await asyncio.sleep(0.02)
        stats = engine.stats()
        await engine.shutdown()
        return stats

    stats = asyncio.run(run())
    assert stats.num_requests == 0 and stats.kv_blocks_used == 0


def test_invalid_requests_raise_at_add_time(qwen3_ckpt, async_scheduling):
    async def run():
        engine = make_engine(qwen3_ckpt, async_scheduling)
        try:
            with pytest.raises(InvalidRequestError):
                engine.add_request("bad", "", SamplingParams())
            stream = engine.add_request("dup", "Hello", SamplingParams(max_tokens=2))
            with pytest.raises(InvalidRequestError, match="already in use"):
                engine.add_request("dup", "Hello", SamplingParams(max_tokens=2))
            return [out async for out in stream]
        finally:
            await engine.shutdown()

    outputs = asyncio.run(run())
    assert outputs[-1].finished


def test_a_request_id_is_free_again_as_soon_as_its_stream_ends(qwen3_ckpt, async_scheduling):
    """A client that reuses its request id right after the final output must not get "already
    in use": the id is released before the stream's end is delivered (a race before)."""

    async def run():
        engine = make_engine(qwen3_ckpt, async_scheduling)
        try:
            finished, held_at_end = 0, []
            for _ in range(8):
                stream = engine.add_request("same-id", "Hello", SamplingParams(max_tokens=2))
                put = stream.put

                def watched_put(item, stream=stream, put=put):
                    # in the engine thread, at the moment the end is handed over
                    if getattr(item, "finished", False):
                        held_at_end.append(engine._streams.get("same-id") is stream)
                    put(item)

                stream.put = watched_put
                async for out in stream:
                    finished += out.finished
            return finished, held_at_end
        finally:
            await engine.shutdown()

    finished, held_at_end = asyncio.run(run())
    assert finished == 8 and held_at_end == [False] * 8


def test_stopping_one_branch_frees_it_and_the_others_finish(qwen3_ckpt, async_scheduling):
    async def run():
        engine = make_engine(qwen3_ckpt, async_scheduling)
        params = SamplingParams(
            n=3, temperature=1.0, seed=1, max_tokens=30, ignore_eos=True, output_kind=RequestOutputKind.DELTA
        )
        stream = engine.add_request("branches", "Let me think", params)
        tokens = {0: 0, 1: 0, 2: 0}
        finish = {}
        async for out in stream:
            for completion in out.outputs:
                tokens[completion.index] += len(completion.token_ids)
                if completion.finish_reason:
                    finish[completion.index] = completion.finish_reason
            if tokens[1] >= 3 and 1 not in finish:
                engine.stop_branch("branches", 1)
        stats = engine.stats()
        await engine.shutdown()
        return tokens, finish, stats

    tokens, finish, stats = asyncio.run(run())
    assert finish == {0: "length", 1: "abort", 2: "length"}
    assert tokens[0] == tokens[2] == 30 and tokens[1] < 30
    assert stats.kv_blocks_used == 0


def test_engines_in_one_process_step_side_by_side(qwen3_ckpt, qwen2_ckpt, async_scheduling):
    """A server hosting two models steps two engines in two threads at once: each forward must
    see its own batch (the attention metadata is per thread, not global)."""
    prompts = ["Hello", "The quick brown fox", "Let me think step by step", "Numbers like 0 1 2"]
    greedy = SamplingParams(temperature=0, max_tokens=24, ignore_eos=True)
    offline = {
        ckpt: [o.outputs[0].text for o in LLM(str(ckpt)).generate(prompts, greedy)]
        for ckpt in (qwen3_ckpt, qwen2_ckpt)
    }

    async def run():
        engines = {ckpt: make_engine(ckpt, async_scheduling) for ckpt in offline}

        async def complete(ckpt, index):
            stream = engines[ckpt].add_request(f"{ckpt.name}-{index}", prompts[index], greedy)
            async for output in stream:
                if output.finished:
                    return output.outputs[0].text

        texts = await asyncio.gather(
            *(complete(ckpt, index) for index in range(len(prompts)) for ckpt in offline)
        )
        for engine in engines.values():
            await engine.shutdown()
        return texts

    texts = asyncio.run(run())
    assert texts[0::2] == offline[qwen3_ckpt] and texts[1::2] == offline[qwen2_ckpt]
