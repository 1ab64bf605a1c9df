"""Picks the kernel for each op: Triton on CUDA tensors, the torch reference elsewhere.

The Triton modules are imported on first CUDA use only, so CPU runs never need Triton.
"""

from __future__ import annotations

import functools

import torch

from ponder.kernels.attention_metadata import AttentionMetadata
from ponder.kernels.paged_attention import paged_attention as reference_paged_attention
from ponder.kernels.paged_attention import store_kv as reference_store_kv
from ponder.kernels.sdpa_prefill import FusedKernelUnavailable, fresh_prefill_attention, use_fresh_prefill


@functools.cache
def triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def use_triton(tensor: torch.Tensor) -> bool:
    return tensor.is_cuda and triton_available()


@functools.cache
def num_sms(device_index: int) -> int:
    return torch.cuda.get_device_properties(device_index).multi_processor_count


def decode_num_splits(num_seqs: int, num_kv_heads: int, max_seq_len: int, device: torch.device) -> int:
    """How many KV partitions the decode kernel uses for this batch on this device."""
    from ponder.kernels.triton_decode_attention import choose_num_splits

    sms = num_sms(device.index if device.index is not None else torch.cuda.current_device())
    return choose_num_splits(num_seqs, num_kv_heads, max_seq_len, sms)


def store_kv(
    key: torch.Tensor,
    value: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    slot_mapping: torch.Tensor,
) -> None:
    if use_triton(key):
        from ponder.kernels.triton_store_kv import store_kv as triton_store_kv

        triton_store_kv(key, value, k_cache, v_cache, slot_mapping)
    else:
        reference_store_kv(key, value, k_cache, v_cache, slot_mapping)


def paged_attention(
    query: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    metadata: AttentionMetadata,
    scale: float,
    key: torch.Tensor | None = None,
    value: torch.Tensor | None = None,
) -> torch.Tensor:
    """Same contract as the reference paged_attention. key/value: this step's K/V (already
    stored), which fresh prompts attend to directly on CUDA."""
    if not use_triton(query):
        return reference_paged_attention(query, k_cache, v_cache, metadata, scale)
    if query.shape[1] % k_cache.shape[2] != 0:
        raise ValueError(
            f"query heads ({query.shape[1]}) must be a multiple of KV heads ({k_cache.shape[2]})"
        )
    if metadata.is_decode_only:
        from ponder.kernels.triton_decode_attention import decode_attention

        num_splits = metadata.num_kv_splits or decode_num_splits(
            metadata.num_seqs, k_cache.shape[2], metadata.max_seq_len, query.device
        )
        return decode_attention(
            query,
            k_cache,
            v_cache,
            metadata.block_tables,
            metadata.seq_lens,
            scale,
            num_splits,
        )
    if key is not None and value is not None and not torch.cuda.is_current_stream_capturing():
        # A graph would freeze the per-sequence loop's lengths; graphed steps stay paged.
        if use_fresh_prefill(metadata.query_lens_cpu, metadata.seq_lens_cpu):
            try:
                return fresh_prefill_attention(query, key, value, metadata.query_lens_cpu, scale)
            except FusedKernelUnavailable:
                pass  # the paged kernel below; later steps do not ask again
    from ponder.kernels.triton_prefill_attention import prefill_attention

    return prefill_attention(
        query,
        k_cache,
        v_cache,
        metadata.block_tables,
        metadata.seq_lens,
        metadata.query_start_loc,
        metadata.max_query_len,
        scale,
    )


def argmax_logsumexp(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """logits [rows, vocab] -> (argmax int64 [rows], logsumexp float32 [rows])."""
    if use_triton(logits):
        from ponder.kernels.triton_argmax_lse import argmax_logsumexp as triton_argmax_logsumexp

        return triton_argmax_logsumexp(logits)
    return logits.argmax(dim=-1), torch.logsumexp(logits.float(), dim=-1)
