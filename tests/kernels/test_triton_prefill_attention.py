"""Triton paged prefill/extend attention equals the torch reference (interpreter on CPU)."""

from __future__ import annotations

import pytest
import torch

from ponder.kernels.paged_attention import paged_attention
from tests.kernels.paged_cases import make_paged_batch, relative_error, triton_prefill


def _prefill(batch, scale):
    return triton_prefill(batch, scale)


def _reference(batch, scale):
    meta = batch.metadata
    meta_cpu = type(meta)(
        query_start_loc=meta.query_start_loc.cpu(),
        seq_lens=meta.seq_lens.cpu(),
        block_tables=meta.block_tables.cpu(),
        slot_mapping=meta.slot_mapping.cpu(),
        query_lens_cpu=meta.query_lens_cpu,
        seq_lens_cpu=meta.seq_lens_cpu,
        block_size=meta.block_size,
    )
    return paged_attention(batch.query.cpu(), batch.k_cache.cpu(), batch.v_cache.cpu(), meta_cpu, scale)


def mixed_shapes(block_size: int) -> list[tuple[int, int]]:
    """(seq_len, query_len): decodes, whole prompts, and chunks over a cached prefix."""
    return [
        (block_size + 1, 1),  # decode
        (block_size - 1, block_size - 1),  # whole prompt, one short block
        (1, 1),  # a one-token prompt
        (2 * block_size + 3, 5),  # a chunk over a prefix
        (block_size, block_size),
        (100, 40),  # several query tiles over a prefix longer than a KV tile
    ]


@pytest.mark.parametrize(
    ("block_size", "group", "head_dim"),
    [(16, 1, 64), (16, 2, 64), (16, 4, 64), (32, 2, 64), (32, 4, 128)],
)
def test_prefill_matches_reference_on_mixed_batches(block_size, group, head_dim, device):
    shapes = mixed_shapes(block_size)
    batch = make_paged_batch(
        [s for s, _ in shapes],
        [q for _, q in shapes],
        block_size=block_size,
        num_kv_heads=2,
        group=group,
        head_dim=head_dim,
        device=device,
        seed=group * block_size,
    )
    scale = head_dim**-0.5
    out = _prefill(batch, scale)
    assert out.shape == batch.query.shape and out.dtype == batch.query.dtype
    assert relative_error(out, _reference(batch, scale)) < 1e-5


def test_prefill_bfloat16_close_to_float32_reference(device):
    batch = make_paged_batch(
        [150, 33],
        [80, 33],
        block_size=16,
        num_kv_heads=1,
        group=4,
        head_dim=64,
        dtype=torch.bfloat16,
        device=device,
    )
    out = _prefill(batch, 0.125)
    assert out.dtype == torch.bfloat16
    assert relative_error(out, _reference(batch, 0.125)) < 1e-2
