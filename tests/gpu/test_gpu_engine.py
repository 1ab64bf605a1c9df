"""The engine on the GPU: float32 greedy equals transformers; CUDA graphs equal eager; bf16 agrees."""

from __future__ import annotations

import pytest
import torch

from ponder import LLM, SamplingParams
from tests.engine._reference import hf_greedy
from tests.gpu._cases import prompts

MAX_NEW = 16


def greedy(**kwargs) -> SamplingParams:
    return SamplingParams(temperature=0.0, max_tokens=MAX_NEW, ignore_eos=True, **kwargs)


def generate(llm: LLM, batch) -> list[list[int]]:
    outs = llm.generate([{"prompt_token_ids": p} for p in batch], greedy())
    return [o.outputs[0].token_ids for o in outs]


def eager(llm: LLM) -> LLM:
    llm.engine.runner.decode_graphs = None
    return llm


@pytest.mark.parametrize("use_graphs", [True, False])
def test_float32_greedy_equals_transformers(gpu_ckpt, use_graphs):
    llm = LLM(str(gpu_ckpt), dtype="float32", max_num_seqs=8, kv_cache_memory=1 << 26)
    assert llm.engine.device.type == "cuda"
    assert llm.engine.runner.decode_graphs is not None
    if not use_graphs:
        eager(llm)
    batch = prompts()
    assert generate(llm, batch) == [hf_greedy(gpu_ckpt, p, MAX_NEW) for p in batch]


def test_chunked_prefill_and_prefix_hits_on_gpu_equal_transformers(gpu_ckpt):
    llm = LLM(
        str(gpu_ckpt),
        dtype="float32",
        max_num_batched_tokens=37,
        block_size=32,
        kv_cache_memory=1 << 26,
        max_num_seqs=8,
    )
    batch = prompts()
    want = [hf_greedy(gpu_ckpt, p, MAX_NEW) for p in batch]
    assert generate(llm, batch) == want
    assert generate(llm, batch) == want  # now with prefix-cache hits
    assert llm.engine.stats().prefix_cache_hits > 0


def test_cuda_graph_replay_equals_eager_forward(gpu_ckpt):
    llm = LLM(str(gpu_ckpt), dtype="float32", max_num_seqs=8, kv_cache_memory=1 << 26)
    runner = llm.engine.runner
    graphs = runner.decode_graphs
    batch = prompts()[:5]  # 5 sequences: bucket 8 with 3 padded rows
    params = greedy(logprobs=3)
    with_graphs = llm.generate([{"prompt_token_ids": p} for p in batch], params)
    runner.decode_graphs = None
    without = llm.generate([{"prompt_token_ids": p} for p in batch], params)
    runner.decode_graphs = graphs
    for a, b in zip(with_graphs, without, strict=True):
        assert a.outputs[0].token_ids == b.outputs[0].token_ids
        for pa, pb in zip(a.outputs[0].logprobs, b.outputs[0].logprobs, strict=True):
            for token, lp in pa.items():
                assert abs(lp.logprob - pb[token].logprob) < 1e-4


def test_bfloat16_graphs_agree_with_eager(gpu_ckpt):
    batch = prompts()
    llm = LLM(str(gpu_ckpt), dtype="bfloat16", max_num_seqs=8, kv_cache_memory=1 << 26)
    graph_tokens = generate(llm, batch)
    eager_tokens = generate(eager(llm), batch)
    # bf16 rounding may flip a near-tie late in a sequence; the bulk must agree exactly.
    agreeing = sum(
        next((i for i, (a, b) in enumerate(zip(g, e)) if a != b), len(g))
        for g, e in zip(graph_tokens, eager_tokens)
    )
    assert agreeing >= 0.9 * len(batch) * MAX_NEW, (graph_tokens, eager_tokens)


def test_bfloat16_triton_path_agrees_with_cpu_reference(gpu_ckpt):
    batch = prompts()[:4]
    gpu = generate(LLM(str(gpu_ckpt), dtype="bfloat16", max_num_seqs=8, kv_cache_memory=1 << 26), batch)
    cpu = generate(LLM(str(gpu_ckpt), dtype="bfloat16", device="cpu", kv_cache_memory=1 << 26), batch)
    agreeing = sum(
        next((i for i, (a, b) in enumerate(zip(g, c)) if a != b), len(g)) for g, c in zip(gpu, cpu)
    )
    assert agreeing >= 0.75 * len(batch) * MAX_NEW, (gpu, cpu)


def test_kv_pool_sized_from_profiled_free_memory(gpu_ckpt):
    from ponder.engine.args import EngineArgs
    from ponder.engine.kv.layout import KVLayout
    from ponder.engine.kv_sizing import num_kv_blocks
    from ponder.models.hf_config import read_arch_config
    from ponder.models.loader import load_model

    arch = read_arch_config(gpu_ckpt)
    device = torch.device("cuda")
    model = load_model(gpu_ckpt, arch, torch.bfloat16, device)
    config = EngineArgs.from_kwargs(str(gpu_ckpt), gpu_memory_utilization=0.5).create_engine_config()
    layout = KVLayout(arch.num_hidden_layers, arch.num_key_value_heads, arch.head_dim, 16, torch.bfloat16)
    blocks = num_kv_blocks(config, layout, arch, device, 1024, model=model)
    free, total = torch.cuda.mem_get_info()
    per_block = 2 * arch.num_hidden_layers * arch.num_key_value_heads * arch.head_dim * 2 * 16
    assert layout.bytes_per_block == per_block
    assert blocks >= 1 and blocks * per_block <= 0.5 * total
