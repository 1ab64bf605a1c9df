"""Triton split-KV decode attention equals the torch reference (interpreter on CPU)."""

from __future__ import annotations

import pytest
import torch

from ponder.kernels.paged_attention import paged_attention
from tests.kernels.paged_cases import make_paged_batch, relative_error


def _decode(batch, num_splits, scale):
    from ponder.kernels.triton_decode_attention import decode_attention

    meta = batch.metadata
    return decode_attention(
        batch.query,
        batch.k_cache,
        batch.v_cache,
        meta.block_tables,
        meta.seq_lens,
        scale,
        num_splits,
    )


def _reference(batch, scale):
    cpu = {name: getattr(batch, name).cpu() for name in ("query", "k_cache", "v_cache")}
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
    return paged_attention(cpu["query"], cpu["k_cache"], cpu["v_cache"], meta_cpu, scale)


@pytest.mark.parametrize(
    ("block_size", "group", "head_dim", "num_splits"),
    [
        (16, 1, 64, 1),
        (16, 2, 64, 3),
        (16, 4, 64, 7),
        (32, 4, 64, 1),
        (32, 2, 64, 4),
        (16, 4, 128, 2),
    ],
)
def test_decode_matches_reference(block_size, group, head_dim, num_splits, device):
    # Lengths 1, block_size +- 1, a few blocks, and one long enough for several 64-token tiles.
    seq_lens = [1, block_size - 1, block_size, block_size + 1, 3 * block_size + 5, 200]
    batch = make_paged_batch(
        seq_lens,
        [1] * len(seq_lens),
        block_size=block_size,
        num_kv_heads=2,
        group=group,
        head_dim=head_dim,
        device=device,
        seed=block_size + group + num_splits,
    )
    scale = head_dim**-0.5
    out = _decode(batch, num_splits, scale)
    assert out.shape == batch.query.shape and out.dtype == batch.query.dtype
    assert relative_error(out, _reference(batch, scale)) < 1e-5


def test_decode_more_splits_than_tiles_and_empty_sequence(device):
    # 9 splits over contexts of <= 2 tiles: most splits are empty; length 0 gives zeros.
    batch = make_paged_batch(
        [70, 5, 1], [1, 1, 1], block_size=16, num_kv_heads=1, group=2, head_dim=64, device=device
    )
    batch.metadata.seq_lens[2] = 0
    out = _decode(batch, 9, 0.125)
    batch.metadata.seq_lens[2] = 1
    reference = _reference(batch, 0.125)
    assert relative_error(out[:2], reference[:2]) < 1e-5
    assert torch.equal(out[2].cpu(), torch.zeros_like(out[2].cpu()))


def test_decode_bfloat16_close_to_float32_reference(device):
    batch = make_paged_batch(
        [300, 17],
        [1, 1],
        block_size=16,
        num_kv_heads=2,
        group=4,
        head_dim=64,
        dtype=torch.bfloat16,
        device=device,
    )
    out = _decode(batch, 3, 0.125)
    assert out.dtype == torch.bfloat16
    assert relative_error(out, _reference(batch, 0.125)) < 1e-2


def test_choose_num_splits_fills_the_gpu_only_when_needed():
    from ponder.kernels.triton_decode_attention import MAX_SPLITS, choose_num_splits

    assert choose_num_splits(128, 8, 32768, num_sms=132) == 1  # batch x heads already fill it
    assert choose_num_splits(1, 8, 32768, num_sms=132) == 33  # 2 programs per SM
    assert choose_num_splits(1, 8, 300, num_sms=132) == 2  # short context: no tiny splits
    assert choose_num_splits(1, 1, 10**6, num_sms=132) == MAX_SPLITS
