"""Fresh-prompt attention through torch SDPA equals the paged reference, sequence by sequence."""

from __future__ import annotations

import pytest
import torch

from ponder.kernels import sdpa_prefill
from ponder.kernels.paged_attention import paged_attention, store_kv
from tests.fixtures.paged_batch import build_attention_metadata


def test_fresh_prefill_matches_paged_reference_with_gqa():
    gen = torch.Generator().manual_seed(0)
    lengths, heads, kv_heads, head_dim, block_size = [7, 1, 30], 4, 2, 16, 8
    total = sum(lengths)
    query = torch.randn(total, heads, head_dim, generator=gen)
    key = torch.randn(total, kv_heads, head_dim, generator=gen)
    value = torch.randn(total, kv_heads, head_dim, generator=gen)
    blocks = [-(-n // block_size) for n in lengths]
    tables, slots, first = [], [], 0
    for n, count in zip(lengths, blocks, strict=True):
        tables.append(list(range(first, first + count)))
        slots += [first * block_size + i for i in range(n)]
        first += count
    k_cache = torch.zeros(first, block_size, kv_heads, head_dim)
    v_cache = torch.zeros_like(k_cache)
    store_kv(key, value, k_cache, v_cache, torch.tensor(slots))
    metadata = build_attention_metadata(tables, lengths, lengths, block_size)
    want = paged_attention(query, k_cache, v_cache, metadata, head_dim**-0.5)
    got = sdpa_prefill.fresh_prefill_attention(query, key, value, lengths, head_dim**-0.5)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_fresh_prefill_only_for_long_prompts_with_no_cached_prefix():
    big = sdpa_prefill.MIN_TOKENS
    assert sdpa_prefill.use_fresh_prefill([big], [big])
    assert not sdpa_prefill.use_fresh_prefill([big], [big + 16])  # a cached prefix: paged kernel
    assert not sdpa_prefill.use_fresh_prefill([big // 4], [big // 4])  # too short to pay
    assert not sdpa_prefill.use_fresh_prefill([big, 1], [big, 40])  # mixed with a decode


def test_no_fused_kernel_raises_typed_error_and_stops_asking(monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("No available kernel. Aborting execution.")

    monkeypatch.setattr(sdpa_prefill.F, "scaled_dot_product_attention", refuse)
    monkeypatch.setattr(sdpa_prefill, "_unavailable", False)
    big = sdpa_prefill.MIN_TOKENS
    tensor = torch.zeros(4, 2, 8)
    with pytest.raises(sdpa_prefill.FusedKernelUnavailable):
        sdpa_prefill.fresh_prefill_attention(tensor, tensor, tensor, [4], 1.0)
    assert not sdpa_prefill.use_fresh_prefill([big], [big])  # the paged kernel from now on
