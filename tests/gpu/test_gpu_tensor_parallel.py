"""Tensor parallelism over NCCL: TP=2 greedy output equals TP=1, with CUDA graphs and
asynchronous scheduling on (their defaults on CUDA) and eager. Needs 2 GPUs."""

from __future__ import annotations

import pytest
import torch

from ponder import LLM, SamplingParams
from tests.gpu._cases import prompts

pytestmark = pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA GPUs")

GREEDY = SamplingParams(temperature=0.0, max_tokens=16, ignore_eos=True)


def _generate(model: str, **kwargs) -> list[list[int]]:
    with LLM(model, dtype="float32", max_num_seqs=8, kv_cache_memory=1 << 26, **kwargs) as llm:
        if kwargs.get("tensor_parallel_size", 1) > 1:
            assert llm.engine.kv_layout.num_kv_heads == 1  # 2 KV heads over 2 ranks
        outputs = llm.generate([{"prompt_token_ids": p} for p in prompts()], GREEDY)
        return [list(o.outputs[0].token_ids) for o in outputs]


@pytest.mark.parametrize("enforce_eager", [False, True])
def test_nccl_tensor_parallel_greedy_equals_one_gpu(gpu_ckpt, enforce_eager):
    reference = _generate(str(gpu_ckpt), enforce_eager=enforce_eager)
    assert _generate(str(gpu_ckpt), tensor_parallel_size=2, enforce_eager=enforce_eager) == reference
