"""Triton rotary embedding (neox half-rotation) of query and key heads in one launch per token,
optionally after a per-head RMSNorm (Qwen3's q_norm / k_norm): three launches become one."""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _rotate_heads(
    src_ptr,
    dst_ptr,
    stride_token,
    stride_head,
    token,
    cos,
    sin,
    num_heads,
    norm_weight_ptr,
    eps,
    HALF: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_HALF: tl.constexpr,
    NORM: tl.constexpr,
):
    heads = tl.arange(0, BLOCK_H)[:, None]
    dims = tl.arange(0, BLOCK_HALF)[None, :]
    mask = (heads < num_heads) & (dims < HALF)
    src = src_ptr + token * stride_token + heads * stride_head + dims
    first = tl.load(src, mask=mask, other=0.0).to(tl.float32)
    second = tl.load(src + HALF, mask=mask, other=0.0).to(tl.float32)
    dtype = dst_ptr.dtype.element_ty
    if NORM:
        # RMSNorm over each head's 2 * HALF dims, rounded where the unfused RMSNorm rounds:
        # normalized values to the activation dtype, then times the weight.
        inv_rms = tl.rsqrt(tl.sum(first * first + second * second, 1) / (2 * HALF) + eps)[:, None]
        weight_first = tl.load(norm_weight_ptr + dims, mask=dims < HALF, other=0.0).to(tl.float32)
        weight_second = tl.load(norm_weight_ptr + HALF + dims, mask=dims < HALF, other=0.0).to(tl.float32)
        first = (weight_first * (first * inv_rms).to(dtype).to(tl.float32)).to(dtype).to(tl.float32)
        second = (weight_second * (second * inv_rms).to(dtype).to(tl.float32)).to(dtype).to(tl.float32)
    # Every product and sum is rounded to the activation dtype, as the unfused torch ops do.
    new_first = (first * cos).to(dtype).to(tl.float32) - (second * sin).to(dtype).to(tl.float32)
    new_second = (second * cos).to(dtype).to(tl.float32) + (first * sin).to(dtype).to(tl.float32)
    dst = dst_ptr + token * num_heads * 2 * HALF + heads * 2 * HALF + dims
    tl.store(dst, new_first.to(dtype), mask=mask)
    tl.store(dst + HALF, new_second.to(dtype), mask=mask)


@triton.jit
def _rotary_kernel(
    positions_ptr,
    cos_ptr,
    sin_ptr,
    query_ptr,
    key_ptr,
    query_out_ptr,
    key_out_ptr,
    stride_query_token,
    stride_query_head,
    stride_key_token,
    stride_key_head,
    num_query_heads,
    num_key_heads,
    query_norm_ptr,
    key_norm_ptr,
    eps,
    HALF: tl.constexpr,
    BLOCK_HALF: tl.constexpr,
    BLOCK_QH: tl.constexpr,
    BLOCK_KH: tl.constexpr,
    NORM: tl.constexpr,
):
    token = tl.program_id(0)
    position = tl.load(positions_ptr + token).to(tl.int64)
    dims = tl.arange(0, BLOCK_HALF)[None, :]
    dim_mask = dims < HALF
    dtype = query_out_ptr.dtype.element_ty
    cos = tl.load(cos_ptr + position * HALF + dims, mask=dim_mask, other=0.0).to(dtype)
    sin = tl.load(sin_ptr + position * HALF + dims, mask=dim_mask, other=0.0).to(dtype)
    cos, sin = cos.to(tl.float32), sin.to(tl.float32)
    _rotate_heads(
        query_ptr,
        query_out_ptr,
        stride_query_token,
        stride_query_head,
        token,
        cos,
        sin,
        num_query_heads,
        query_norm_ptr,
        eps,
        HALF,
        BLOCK_QH,
        BLOCK_HALF,
        NORM,
    )
    _rotate_heads(
        key_ptr,
        key_out_ptr,
        stride_key_token,
        stride_key_head,
        token,
        cos,
        sin,
        num_key_heads,
        key_norm_ptr,
        eps,
        HALF,
        BLOCK_KH,
        BLOCK_HALF,
        NORM,
    )


def apply_rotary(
    positions: torch.Tensor,
    query: torch.Tensor,
    key: torch.Tensor,
    cos_cache: torch.Tensor,
    sin_cache: torch.Tensor,
    norm_weights: tuple[torch.Tensor, torch.Tensor] | None = None,
    eps: float = 1e-6,
) -> tuple[torch.Tensor, torch.Tensor]:
    """positions [T]; query [T, Hq, D], key [T, Hkv, D] (strided views allowed); float32
    cos/sin caches [max_position, D/2] -> new contiguous rotated (query, key). With
    norm_weights (q, k; [D] each), each head is RMS-normalized first."""
    num_tokens, num_query_heads, head_dim = query.shape
    num_key_heads = key.shape[1]
    if query.stride(-1) != 1 or key.stride(-1) != 1:
        query, key = query.contiguous(), key.contiguous()
    query_out = torch.empty(query.shape, dtype=query.dtype, device=query.device)
    key_out = torch.empty(key.shape, dtype=key.dtype, device=key.device)
    if num_tokens == 0:
        return query_out, key_out
    half = head_dim // 2
    _rotary_kernel[(num_tokens,)](
        positions,
        cos_cache,
        sin_cache,
        query,
        key,
        query_out,
        key_out,
        query.stride(0),
        query.stride(1),
        key.stride(0),
        key.stride(1),
        num_query_heads,
        num_key_heads,
        *(norm_weights or (query, key)),  # unread without NORM
        eps,
        HALF=half,
        BLOCK_HALF=triton.next_power_of_2(half),
        BLOCK_QH=triton.next_power_of_2(num_query_heads),
        BLOCK_KH=triton.next_power_of_2(num_key_heads),
        NORM=norm_weights is not None,
        num_warps=4,
    )
    return query_out, key_out
