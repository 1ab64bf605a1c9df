"""Random paged-KV batches for comparing Triton attention kernels with the torch reference."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ponder.kernels.attention_metadata import AttentionMetadata
from ponder.kernels.paged_attention import store_kv
from tests.fixtures.paged_batch import build_attention_metadata


@dataclass
class PagedBatch:
    query: torch.Tensor  # [T, Hq, D]
    k_cache: torch.Tensor  # [num_blocks, block_size, Hkv, D]
    v_cache: torch.Tensor
    metadata: AttentionMetadata


def make_paged_batch(
    seq_lens: list[int],
    query_lens: list[int],
    *,
    block_size: int,
    num_kv_heads: int,
    group: int,
    head_dim: int,
    dtype: torch.dtype = torch.float32,
    device: str = "cpu",
    seed: int = 0,
) -> PagedBatch:
    """Each context written into shuffled blocks of a cache full of large garbage values."""
    gen = torch.Generator().manual_seed(seed)
    blocks_needed = [-(-n // block_size) for n in seq_lens]
    num_blocks = sum(blocks_needed) + 2
    shuffled = torch.randperm(num_blocks, generator=gen).tolist()
    tables, used = [], 0
    for count in blocks_needed:
        tables.append(shuffled[used : used + count])
        used += count
    shape = (num_blocks, block_size, num_kv_heads, head_dim)
    # Garbage everywhere, so reading a slot that was never written changes the result.
    k_cache = (torch.randn(shape, generator=gen) * 100).to(dtype)
    v_cache = (torch.randn(shape, generator=gen) * 100).to(dtype)
    total = sum(seq_lens)
    keys = torch.randn(total, num_kv_heads, head_dim, generator=gen).to(dtype)
    values = torch.randn(total, num_kv_heads, head_dim, generator=gen).to(dtype)
    full = build_attention_metadata(tables, seq_lens, seq_lens, block_size)
    store_kv(keys, values, k_cache, v_cache, full.slot_mapping)
    query = torch.randn(sum(query_lens), num_kv_heads * group, head_dim, generator=gen).to(dtype)
    metadata = build_attention_metadata(tables, seq_lens, query_lens, block_size, device=device)
    return PagedBatch(query.to(device), k_cache.to(device), v_cache.to(device), metadata)


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    out, ref = out.double().cpu(), ref.double().cpu()
    return float((out - ref).norm() / ref.norm().clamp_min(1e-12))


def triton_prefill(batch: PagedBatch, scale: float) -> torch.Tensor:
    """The paged Triton prefill kernel on a PagedBatch (imported here: it needs Triton)."""
    from ponder.kernels.triton_prefill_attention import prefill_attention

    meta = batch.metadata
    return prefill_attention(
        batch.query,
        batch.k_cache,
        batch.v_cache,
        meta.block_tables,
        meta.seq_lens,
        meta.query_start_loc,
        meta.max_query_len,
        scale,
    )
