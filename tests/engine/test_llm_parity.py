"""Greedy output of the engine equals transformers token for token, under every scheduling path,
with synchronous and asynchronous scheduling (the async bookkeeping runs on the CPU too)."""

import pytest

from ponder import LLM, SamplingParams

from ._reference import hf_greedy, hf_logprobs

MAX_NEW = 12


def prompts(vocab: int = 300) -> list[list[int]]:
    lengths = [1, 5, 17, 33, 40]
    return [[(7 * i + 13 * j + 3) % vocab for j in range(length)] for i, length in enumerate(lengths)]


def greedy(max_tokens=MAX_NEW, **kwargs) -> SamplingParams:
    return SamplingParams(temperature=0.0, max_tokens=max_tokens, ignore_eos=True, **kwargs)


def token_prompts(batch):
    return [{"prompt_token_ids": p} for p in batch]


def expected(ckpt, batch, max_new=MAX_NEW):
    return [hf_greedy(ckpt, p, max_new) for p in batch]


@pytest.fixture(params=["qwen3_ckpt", "qwen2_ckpt", "llama_ckpt"])
def ckpt(request):
    return request.getfixturevalue(request.param)


@pytest.fixture
def make_llm(async_scheduling):
    def make(ckpt, **knobs) -> LLM:
        return LLM(str(ckpt), async_scheduling=async_scheduling, **knobs)

    return make


def test_batch_of_prompts_matches_transformers(ckpt, make_llm):
    llm = make_llm(ckpt, kv_cache_memory=1 << 24)
    batch = prompts()
    outs = llm.generate(token_prompts(batch), greedy())
    assert [o.outputs[0].token_ids for o in outs] == expected(ckpt, batch)
    assert llm.engine.stats().kv_blocks_used == 0


def test_tiny_token_budget_chunks_prefill_and_matches(ckpt, make_llm):
    llm = make_llm(ckpt, max_num_batched_tokens=7, block_size=4, kv_cache_memory=1 << 24)
    batch = prompts()
    outs = llm.generate(token_prompts(batch), greedy())
    assert [o.outputs[0].token_ids for o in outs] == expected(ckpt, batch)


def test_prefix_cache_hits_give_identical_output(ckpt, make_llm):
    llm = make_llm(ckpt, block_size=4, kv_cache_memory=1 << 24)
    shared = prompts()[4][:30]
    batch = [shared + [5, 6, 7], shared + [9], shared[:21]]
    first = llm.generate(token_prompts(batch), greedy())
    hits_before = llm.engine.stats().prefix_cache_hits
    second = llm.generate(token_prompts(batch), greedy())
    assert llm.engine.stats().prefix_cache_hits > hits_before
    assert second[0].num_cached_tokens > 0
    want = expected(ckpt, batch)
    assert [o.outputs[0].token_ids for o in first] == want
    assert [o.outputs[0].token_ids for o in second] == want


def test_preemption_recomputes_to_identical_output(ckpt, make_llm):
    # 16 blocks of 4 = 64 tokens for 5 sequences that grow to 21..60 tokens: preemption is certain.
    llm = make_llm(ckpt, block_size=4, num_kv_blocks=16, max_model_len=64)
    batch = prompts()
    outs = llm.generate(token_prompts(batch), greedy(max_tokens=20))
    assert llm.engine.stats().num_preemptions > 0
    assert [o.outputs[0].token_ids for o in outs] == expected(ckpt, batch, max_new=20)
    assert llm.engine.stats().kv_blocks_used == 0


def test_n_greedy_samples_share_prefill(ckpt, make_llm):
    llm = make_llm(ckpt, block_size=4, kv_cache_memory=1 << 24, enable_prefix_caching=False)
    prompt = prompts()[3]
    out = llm.generate(token_prompts([prompt]), greedy(n=4))[0]
    want = hf_greedy(ckpt, prompt, MAX_NEW)
    assert [c.token_ids for c in out.outputs] == [want] * 4
    assert [c.index for c in out.outputs] == [0, 1, 2, 3]
    # the prompt was prefilled once, not four times
    assert llm.engine.stats().prompt_tokens_computed == len(prompt)


def test_logprobs_match_transformers(qwen3_ckpt, make_llm):
    llm = make_llm(qwen3_ckpt, kv_cache_memory=1 << 24)
    prompt = prompts()[2]
    out = llm.generate(token_prompts([prompt]), greedy(logprobs=3, prompt_logprobs=2))[0]
    completion = out.outputs[0]
    reference = hf_logprobs(qwen3_ckpt, prompt + completion.token_ids)
    for step, (token, position) in enumerate(zip(completion.token_ids, completion.logprobs)):
        row = reference[len(prompt) - 1 + step]
        assert position[token].logprob == pytest.approx(row[token].item(), abs=1e-4)
        assert position[token].rank == 1  # greedy picks the most likely token
        top = row.topk(3)
        for value, token_id in zip(top.values.tolist(), top.indices.tolist()):
            assert position[token_id].logprob == pytest.approx(value, abs=1e-4)
    assert out.prompt_logprobs[0] is None and len(out.prompt_logprobs) == len(prompt)
    for index in range(1, len(prompt)):
        token = prompt[index]
        assert out.prompt_logprobs[index][token].logprob == pytest.approx(
            reference[index - 1][token].item(), abs=1e-4
        )
    assert completion.cumulative_logprob == pytest.approx(
        sum(p[t].logprob for t, p in zip(completion.token_ids, completion.logprobs)), abs=1e-4
    )
