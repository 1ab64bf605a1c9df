"""Speculative decoding on the GPU with CUDA graphs: greedy output equals decoding without it.

The paths only a GPU runs: plain decode steps replay the decode CUDA graphs and steps that verify
drafts replay the verify graphs (1 + K tokens per sequence), on the same sequences and KV
(adaptive switch: both kinds alternate); the draft model's own runner replays its decode graphs
for its single-token steps."""

from __future__ import annotations

import pytest

from ponder import LLM, SamplingParams
from tests.gpu._cases import prompts

MAX_NEW = 24
POOL = {"dtype": "float32", "max_num_seqs": 8, "kv_cache_memory": 1 << 26}


def batch() -> list[list[int]]:
    # The shared edge lengths plus prompts that repeat themselves: n-gram lookup finds drafts.
    loops = [[5, 6, 7, 8, 9] * 8, [11, 12, 13] * 20 + [11, 12]]
    return prompts() + loops


def generate(llm: LLM) -> list[list[int]]:
    params = SamplingParams(temperature=0.0, max_tokens=MAX_NEW, ignore_eos=True)
    return [
        list(o.outputs[0].token_ids) for o in llm.generate([{"prompt_token_ids": p} for p in batch()], params)
    ]


@pytest.fixture(scope="module")
def expected(gpu_ckpt) -> list[list[int]]:
    llm = LLM(str(gpu_ckpt), **POOL)
    assert llm.engine.runner.decode_graphs is not None
    return generate(llm)


@pytest.mark.parametrize("adaptive", [False, True])
def test_ngram_with_graphs_equals_plain(gpu_ckpt, expected, adaptive):
    llm = LLM(
        str(gpu_ckpt),
        speculative_method="ngram",
        num_speculative_tokens=4,
        speculative_adaptive=adaptive,
        **POOL,
    )
    runner = llm.engine.runner
    assert runner.decode_graphs is not None and runner.verify_graphs is not None
    assert runner.verify_graphs.tokens_per_seq == 5
    assert generate(llm) == expected
    stats = llm.engine.stats()
    assert stats.spec_draft_tokens > 0
    if not adaptive:  # every decode verifies drafts: the verify graphs ran them
        assert runner.verify_graphs.replays > 0
    assert stats.kv_blocks_used == 0


def test_self_draft_with_graphs_accepts_its_drafts(gpu_ckpt, expected):
    llm = LLM(
        str(gpu_ckpt),
        speculative_method="draft",
        speculative_model=str(gpu_ckpt),
        speculative_adaptive=False,  # a self-draft costs a whole step: the switch would stay off
        num_speculative_tokens=3,
        **POOL,
    )
    proposer = llm.engine.speculator.proposer
    assert proposer.runner.decode_graphs is not None  # the draft's single-token steps replay graphs
    assert generate(llm) == expected
    stats = llm.engine.stats()
    # The draft's graph decode and the target's eager verify round differently: a near-tie may
    # reject a draft now and then (the output stays the target's), but almost all must be taken.
    assert stats.spec_draft_tokens > 0 and stats.spec_accepted_tokens >= 0.95 * stats.spec_draft_tokens
