"""Triton kernels vs the torch reference on large, model-sized shapes (compiled, on the GPU)."""

from __future__ import annotations

import random

import pytest
import torch

from ponder.kernels.paged_attention import paged_attention as reference_attention
from ponder.kernels.paged_attention import store_kv as reference_store_kv
from tests.kernels.paged_cases import make_paged_batch, relative_error, triton_prefill

TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 1e-2, torch.float16: 5e-3}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize(("group", "head_dim", "block_size"), [(4, 128, 16), (2, 128, 32), (1, 64, 16)])
@pytest.mark.parametrize("num_splits", [None, 1, 16])
def test_decode_large(dtype, group, head_dim, block_size, num_splits):
    from ponder.kernels.dispatch import decode_num_splits
    from ponder.kernels.triton_decode_attention import decode_attention

    rng = random.Random(head_dim + group)
    seq_lens = [rng.randint(1, 4100) for _ in range(24)] + [1, block_size, block_size + 1]
    batch = make_paged_batch(
        seq_lens,
        [1] * len(seq_lens),
        block_size=block_size,
        num_kv_heads=8,
        group=group,
        head_dim=head_dim,
        dtype=dtype,
        device="cuda",
    )
    meta = batch.metadata
    splits = num_splits or decode_num_splits(len(seq_lens), 8, max(seq_lens), torch.device("cuda"))
    out = decode_attention(
        batch.query,
        batch.k_cache,
        batch.v_cache,
        meta.block_tables,
        meta.seq_lens,
        head_dim**-0.5,
        splits,
    )
    reference = reference_attention(batch.query, batch.k_cache, batch.v_cache, meta, head_dim**-0.5)
    assert relative_error(out, reference) < TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(("group", "head_dim", "block_size"), [(4, 128, 16), (2, 64, 32)])
def test_prefill_large_mixed_batch(dtype, group, head_dim, block_size):
    # A long prompt, chunks over long prefixes, short prompts and decodes in one batch.
    shapes = [(2048, 2048), (3000, 512), (700, 1), (129, 129), (1500, 17), (33, 1), (4096, 1000)]
    batch = make_paged_batch(
        [s for s, _ in shapes],
        [q for _, q in shapes],
        block_size=block_size,
        num_kv_heads=4,
        group=group,
        head_dim=head_dim,
        dtype=dtype,
        device="cuda",
    )
    out = triton_prefill(batch, head_dim**-0.5)
    reference = reference_attention(batch.query, batch.k_cache, batch.v_cache, batch.metadata, head_dim**-0.5)
    assert relative_error(out, reference) < TOLERANCE[dtype]


def test_store_kv_large():
    from ponder.kernels.triton_store_kv import store_kv

    k_cache = torch.randn(512, 16, 8, 128, device="cuda", dtype=torch.bfloat16)
    v_cache = torch.randn_like(k_cache)
    key = torch.randn(3000, 8, 128, device="cuda")
    value = torch.randn_like(key)
    slots = torch.randperm(512 * 16, device="cuda")[:3000]
    slots[::7] = -1
    want_k, want_v = k_cache.clone(), v_cache.clone()
    reference_store_kv(key, value, want_k, want_v, slots)
    store_kv(key, value, k_cache, v_cache, slots)
    assert torch.equal(k_cache, want_k) and torch.equal(v_cache, want_v)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_layers_large(dtype):
    from ponder.layers.activation import SiluAndMul
    from ponder.layers.norm import RMSNorm
    from ponder.layers.rotary import RotaryEmbedding

    exact = {"atol": 1e-5, "rtol": 1e-5} if dtype == torch.float32 else {"atol": 1e-2, "rtol": 1e-2}
    x = torch.randn(1000, 4096, device="cuda", dtype=dtype)
    residual = torch.randn_like(x)
    norm = RMSNorm(4096).to("cuda", dtype)
    norm.weight.data.normal_()
    out, summed = norm(x, residual)  # Triton on CUDA
    want_out, want_summed = norm.cpu()(x.cpu(), residual.cpu())
    torch.testing.assert_close(summed.cpu(), want_summed, **exact)
    torch.testing.assert_close(out.cpu(), want_out, **exact)
    gate_up = torch.randn(1000, 2 * 12288, device="cuda", dtype=dtype)
    torch.testing.assert_close(SiluAndMul()(gate_up).cpu(), SiluAndMul()(gate_up.cpu()), **exact)
    rotary = RotaryEmbedding(128, 40960, 1e6).to("cuda")
    positions = torch.randint(0, 40960, (1000,), device="cuda")
    qkv = torch.randn(1000, 48 * 128, device="cuda", dtype=dtype)
    query, key = qkv[:, : 32 * 128].view(1000, 32, 128), qkv[:, 32 * 128 : 40 * 128].view(1000, 8, 128)
    got_q, got_k = rotary(positions, query, key)
    want_q, want_k = rotary.cpu()(positions.cpu(), query.cpu(), key.cpu())
    torch.testing.assert_close(got_q.cpu(), want_q, **exact)
    torch.testing.assert_close(got_k.cpu(), want_k, **exact)
    # Qwen3's q/k norm fused into the rotary kernel = norm, then rotary (the torch path).
    q_norm, k_norm = RMSNorm(128).to("cuda", dtype), RMSNorm(128).to("cuda", dtype)
    q_norm.weight.data.normal_()
    k_norm.weight.data.normal_()
    got_q, got_k = rotary(positions, query, key, (q_norm, k_norm))
    want_q, want_k = rotary.cpu()(positions.cpu(), query.cpu(), key.cpu(), (q_norm.cpu(), k_norm.cpu()))
    torch.testing.assert_close(got_q.cpu(), want_q, **exact)
    torch.testing.assert_close(got_k.cpu(), want_k, **exact)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_argmax_logsumexp_large(dtype):
    from ponder.kernels.dispatch import argmax_logsumexp

    logits = torch.randn(128, 151936, device="cuda", dtype=dtype) * 4
    argmax, lse = argmax_logsumexp(logits)
    assert torch.equal(argmax, logits.argmax(dim=-1))
    torch.testing.assert_close(lse, torch.logsumexp(logits.float(), dim=-1), atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("lengths", [[2048], [1500, 700]])
def test_fresh_prompt_prefill_through_sdpa_matches_paged_kernel(lengths):
    from ponder.kernels import sdpa_prefill

    batch = make_paged_batch(
        lengths,
        lengths,
        block_size=16,
        num_kv_heads=8,
        group=4,
        head_dim=128,
        dtype=torch.bfloat16,
        device="cuda",
    )
    meta = batch.metadata
    # This step's K/V, read back from the cache the batch wrote them to.
    slots = meta.slot_mapping
    flat_k = batch.k_cache.view(-1, 8, 128)[slots]
    flat_v = batch.v_cache.view(-1, 8, 128)[slots]
    assert sdpa_prefill.use_fresh_prefill(meta.query_lens_cpu, meta.seq_lens_cpu)
    got = sdpa_prefill.fresh_prefill_attention(batch.query, flat_k, flat_v, meta.query_lens_cpu, 128**-0.5)
    want = triton_prefill(batch, 128**-0.5)
    assert relative_error(got, want) < TOLERANCE[torch.bfloat16]
