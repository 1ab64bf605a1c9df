"""A failure inside one request's sampling or detokenizing ends that request alone (finish_reason
"error", its KV freed); every other request in the batch goes on to the same tokens it would
have produced anyway, and the engine keeps serving. Faults are injected for real, by wrapping the
engine's own sampler / sequence updater so they raise for one request."""

from __future__ import annotations

import asyncio

import pytest

from ponder.engine.args import EngineArgs
from ponder.engine.async_engine import AsyncEngine
from ponder.engine.llm_engine import LLMEngine
from ponder.engine.sampling_params import SamplingParams
from ponder.errors import RequestFailedError

PROMPTS = {"a": [5, 6, 7, 8], "bad": [9, 10, 11], "c": [12, 13, 14, 15, 16]}
# "c" samples with a seed: the failure isolation must not disturb its random stream.
PARAMS = {
    "a": SamplingParams(max_tokens=12, temperature=0.0),
    "bad": SamplingParams(max_tokens=12, temperature=0.0, seed=13),
    "c": SamplingParams(max_tokens=12, temperature=0.9, seed=7),
}


def make_engine(ckpt, async_scheduling: bool) -> LLMEngine:
    knobs = {"block_size": 4, "kv_cache_memory": 1 << 24, "max_model_len": 128}
    args = EngineArgs.from_kwargs(str(ckpt), async_scheduling=async_scheduling, **knobs)
    return LLMEngine(args.create_engine_config())


def run(engine: LLMEngine) -> dict:
    for request_id, prompt in PROMPTS.items():
        engine.add_request(request_id, prompt, PARAMS[request_id])
    finished = {}
    for _ in range(200):
        for output in engine.step():
            if output.finished:
                finished[output.request_id] = output
        if not engine.has_unfinished_requests():
            break
    return finished


@pytest.fixture(scope="module")
def reference(qwen3_ckpt):
    outputs = run(make_engine(qwen3_ckpt, False))
    return {rid: out.outputs[0].token_ids for rid, out in outputs.items()}


def detokenizing_fails_for(engine: LLMEngine, request_id: str, after_tokens: int) -> None:
    append = engine.updater.append_sampled

    def faulty(seq, sampled, row, now):
        if seq.request.request_id == request_id and seq.num_output_tokens >= after_tokens:
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "injected")
        append(seq, sampled, row, now)

    engine.updater.append_sampled = faulty  # type: ignore[method-assign]


def sampling_fails_for_seed(engine: LLMEngine, seed: int) -> None:
    sample = engine.sampler.sample

    def faulty(logits, rows):
        if any(row.params.seed == seed for row in rows):
            raise RuntimeError("injected: probability tensor contains nan")
        return sample(logits, rows)

    engine.sampler.sample = faulty  # type: ignore[method-assign]


def assert_only_bad_failed(engine: LLMEngine, outputs: dict, reference: dict) -> None:
    bad = outputs["bad"]
    assert bad.finished and bad.error is not None and "injected" in bad.error
    assert bad.outputs[0].finish_reason == "error"
    for request_id in ("a", "c"):
        assert outputs[request_id].error is None
        assert outputs[request_id].outputs[0].token_ids == reference[request_id]
    stats = engine.stats()
    assert stats.num_requests == 0 and stats.kv_blocks_used == 0  # the failed request's KV is free


def test_a_detokenizer_failure_fails_only_its_request(qwen3_ckpt, reference, async_scheduling):
    engine = make_engine(qwen3_ckpt, async_scheduling)
    detokenizing_fails_for(engine, "bad", after_tokens=3)
    outputs = run(engine)
    assert_only_bad_failed(engine, outputs, reference)
    assert len(outputs["bad"].outputs[0].token_ids) == 3  # what it had before the failure


def test_a_sampling_failure_fails_only_its_request(qwen3_ckpt, reference, async_scheduling):
    engine = make_engine(qwen3_ckpt, async_scheduling)
    sampling_fails_for_seed(engine, 13)
    outputs = run(engine)
    assert_only_bad_failed(engine, outputs, reference)
    assert outputs["bad"].outputs[0].token_ids == []


def test_a_failure_no_single_request_explains_is_the_engines(qwen3_ckpt):
    engine = make_engine(qwen3_ckpt, False)
    sample = engine.sampler.sample

    def faulty(logits, rows):
        if len(rows) > 1:
            raise RuntimeError("batch-level bug")
        return sample(logits, rows)

    engine.sampler.sample = faulty  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="batch-level bug"):
        run(engine)


def test_async_engine_raises_a_typed_error_for_the_failed_request_and_keeps_serving(qwen3_ckpt, reference):
    llm_engine = make_engine(qwen3_ckpt, False)
    detokenizing_fails_for(llm_engine, "bad", after_tokens=2)
    engine = AsyncEngine(llm_engine)

    async def collect(request_id: str, prompt_of: str | None = None):
        key = prompt_of or request_id
        tokens: list[int] = []
        async for output in engine.add_request(request_id, PROMPTS[key], PARAMS[key]):
            tokens = output.outputs[0].token_ids
        return tokens

    async def main():
        results = await asyncio.gather(*(collect(rid) for rid in PROMPTS), return_exceptions=True)
        again = await collect("a-again", prompt_of="a")  # the engine still serves
        await engine.shutdown()
        return results, again

    (a, bad, c), again = asyncio.run(main())
    assert isinstance(bad, RequestFailedError) and "injected" in str(bad)
    assert a == reference["a"] == again and c == reference["c"]
