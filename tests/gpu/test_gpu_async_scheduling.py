"""Asynchronous scheduling on the GPU: the same tokens as synchronous scheduling, and a
steady-state decode step that never makes the host wait for the device."""

from __future__ import annotations

import pytest
import torch

from ponder import LLM, SamplingParams
from tests.engine._reference import hf_greedy
from tests.gpu._cases import prompts

MAX_NEW = 16


def mixed_params() -> list[SamplingParams]:
    sampled = dict(temperature=0.8, top_p=0.9, top_k=50, max_tokens=MAX_NEW, ignore_eos=True)
    return [
        SamplingParams(temperature=0, max_tokens=MAX_NEW, ignore_eos=True),
        SamplingParams(**sampled, seed=1),
        SamplingParams(**sampled, seed=2, logprobs=3),
        SamplingParams(temperature=0, max_tokens=MAX_NEW, ignore_eos=True, confidence_top_k=5),
        SamplingParams(**sampled, n=3, seed=4),
        SamplingParams(temperature=0, max_tokens=9, ignore_eos=True, min_tokens=5),
        SamplingParams(temperature=0, max_tokens=MAX_NEW, ignore_eos=True, prompt_logprobs=1),
    ]


def generate(llm: LLM, params) -> list[list[list[int]]]:
    outs = llm.generate([{"prompt_token_ids": p} for p in prompts()], params)
    return [[c.token_ids for c in o.outputs] for o in outs]


def test_async_is_the_cuda_default_and_matches_sync_and_transformers(gpu_ckpt):
    llm = LLM(str(gpu_ckpt), dtype="float32", max_num_seqs=16, kv_cache_memory=1 << 26)
    assert llm.engine.async_scheduling and llm.engine.runner.decode_graphs is not None
    greedy = SamplingParams(temperature=0, max_tokens=MAX_NEW, ignore_eos=True)
    assert generate(llm, greedy) == [[hf_greedy(gpu_ckpt, p, MAX_NEW)] for p in prompts()]
    llm.engine.reset_prefix_cache()  # both runs below compute every prompt the same way
    async_tokens = generate(llm, mixed_params())
    llm.engine.async_scheduling = False
    llm.engine.reset_prefix_cache()
    assert generate(llm, mixed_params()) == async_tokens
    assert llm.engine.stats().kv_blocks_used == 0


@pytest.mark.parametrize("enforce_eager", [False, True], ids=["graphs", "eager"])
def test_steady_state_steps_never_wait_for_the_gpu(gpu_ckpt, enforce_eager):
    llm = LLM(
        str(gpu_ckpt), dtype="bfloat16", max_num_seqs=16, kv_cache_memory=1 << 26, enforce_eager=enforce_eager
    )
    engine = llm.engine
    for index, (prompt, params) in enumerate(zip(prompts(), mixed_params(), strict=True)):
        params.max_tokens = params.min_tokens = 64
        engine.add_request(f"r{index}", {"prompt_token_ids": prompt}, params)
    for _ in range(4):  # prefill, the forks of n > 1, their first copy-on-write
        engine.step()
    # Launching step N + 1 and handling step N's tokens: a blocking copy or .item() in there
    # raises here. (Waiting on step N's event is the one wait, and it is not a stream sync.)
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(8):
            engine.step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    while engine.has_unfinished_requests():
        engine.step()
    assert engine.stats().kv_blocks_used == 0
