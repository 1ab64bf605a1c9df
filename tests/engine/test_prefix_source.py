"""A request that extends a running sample (`prefix_of`, as an answer probe does) reuses that
sample's KV, its partly written last block included, and its output stays exact."""

from __future__ import annotations

import pytest

from ponder import LLM, SamplingParams
from ponder.engine.llm_engine import LLMEngine

from ._reference import hf_greedy

PARENT_PROMPT = [(5 * j + 3) % 300 for j in range(21)]
EXTRA = [5, 6, 7]


def greedy(max_tokens: int) -> SamplingParams:
    return SamplingParams(temperature=0.0, max_tokens=max_tokens, ignore_eos=True)


def run_to_end(engine: LLMEngine) -> dict[str, list[int]]:
    tokens: dict[str, list[int]] = {}
    while engine.has_unfinished_requests():
        for output in engine.step():
            if output.finished:
                tokens[output.request_id] = list(output.outputs[0].token_ids)
    return tokens


def start_parent(engine: LLMEngine, parent_tokens: int) -> list[int]:
    """Start a 30-token greedy sample and step until it has `parent_tokens` output tokens on the
    host; returns its tokens so far (prompt included)."""
    engine.add(engine.make_request("parent", {"prompt_token_ids": PARENT_PROMPT}, greedy(30)))
    parent = engine.requests["parent"].sequences[0]
    while parent.num_output_tokens < parent_tokens:
        engine.step()
    return list(parent.token_ids)


@pytest.mark.parametrize("parent_tokens", [5, 6])  # 26 and 27 tokens: 2 and 3 into a block
def test_a_probe_of_a_running_sample_computes_only_its_new_tokens(
    qwen3_ckpt, async_scheduling, parent_tokens
):
    llm = LLM(str(qwen3_ckpt), block_size=4, kv_cache_memory=1 << 24, async_scheduling=async_scheduling)
    engine = llm.engine
    so_far = start_parent(engine, parent_tokens)
    assert len(so_far) % 4 != 0  # the shared KV ends inside a block
    before = engine.stats()
    probe_prompt = so_far + EXTRA
    engine.add(
        engine.make_request(
            "probe",
            {"prompt_token_ids": probe_prompt},
            greedy(6),
            ahead=True,
            prefix_of=("parent", 0),
        )
    )
    tokens = run_to_end(engine)
    after = engine.stats()
    # The parent's last token may not have been computed yet: at most one more than the probe text.
    assert after.prompt_tokens_computed - before.prompt_tokens_computed <= len(EXTRA) + 1
    assert after.prefix_cache_hits - before.prefix_cache_hits >= len(so_far) - 1
    assert tokens["probe"] == hf_greedy(str(qwen3_ckpt), probe_prompt, 6)
    assert tokens["parent"] == hf_greedy(str(qwen3_ckpt), PARENT_PROMPT, 30)  # its block was copied
    assert after.kv_blocks_used == 0


def test_without_a_live_source_the_prefix_cache_serves_full_blocks_only(qwen3_ckpt):
    llm = LLM(str(qwen3_ckpt), block_size=4, kv_cache_memory=1 << 24)
    engine = llm.engine
    so_far = start_parent(engine, 6)
    probe_prompt = so_far + EXTRA
    before = engine.stats()
    for request_id, source in (("gone", ("nobody", 0)), ("no-sample", ("parent", 3)), ("plain", None)):
        engine.add(
            engine.make_request(request_id, {"prompt_token_ids": probe_prompt}, greedy(4), prefix_of=source)
        )
    tokens = run_to_end(engine)
    want = hf_greedy(str(qwen3_ckpt), probe_prompt, 4)
    assert tokens["gone"] == tokens["no-sample"] == tokens["plain"] == want
    # All three are admitted in one step: each computes what follows the parent's full blocks.
    computed = engine.stats().prompt_tokens_computed - before.prompt_tokens_computed
    assert computed == 3 * (len(probe_prompt) - 4 * (len(so_far) // 4))
