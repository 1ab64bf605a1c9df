"""Attention of fresh prompts (no cached prefix) through torch's fused SDPA kernels.

When every sequence in the step starts at position 0, its keys and values are exactly this
step's K/V, so attention needs no paged gather: PyTorch's FlashAttention / cuDNN kernels run on
the contiguous tensors. They beat the paged Triton kernel on long prompts (BENCHMARKS.md,
"prefill attention"); cached prefixes and chunked continuations stay on the Triton kernel.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

# Below this many new tokens the per-sequence launches outweigh the faster kernel.
MIN_TOKENS = 1024
# PONDER_FRESH_PREFILL=triton keeps every prefill on the paged Triton kernel (the baseline).
ENABLED = os.environ.get("PONDER_FRESH_PREFILL", "sdpa") != "triton"
# Fused kernels only: the math fallback would materialize [H, n, n] scores (128 GB at 32k).
FUSED_BACKENDS = [SDPBackend.FLASH_ATTENTION, SDPBackend.CUDNN_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]


class FusedKernelUnavailable(RuntimeError):
    """No fused SDPA kernel takes these inputs (dtype, head size, GQA); use the paged kernel."""


_unavailable = False  # set once no fused kernel took a step: stop asking


def use_fresh_prefill(query_lens: list[int], seq_lens: list[int]) -> bool:
    return ENABLED and not _unavailable and sum(query_lens) >= MIN_TOKENS and query_lens == seq_lens


def fresh_prefill_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, query_lens: list[int], scale: float
) -> torch.Tensor:
    """query [T, Hq, D], key/value [T, Hkv, D], sequences concatenated -> [T, Hq, D], causal."""
    global _unavailable
    out = torch.empty_like(query)
    start = 0
    backends = FUSED_BACKENDS if query.is_cuda else [SDPBackend.MATH]
    with sdpa_kernel(backends):
        for length in query_lens:
            rows = slice(start, start + length)
            # [1, H, n, D] views of the token-major tensors; the kernels take strided inputs.
            q, k, v = (t[rows].transpose(0, 1).unsqueeze(0) for t in (query, key, value))
            try:
                attended = F.scaled_dot_product_attention(
                    q, k, v, is_causal=True, scale=scale, enable_gqa=True
                )
            except RuntimeError as error:  # refused at dispatch, before any kernel ran
                _unavailable = True
                raise FusedKernelUnavailable(str(error)) from error
            out[rows] = attended[0].transpose(0, 1)
            start += length
    return out
