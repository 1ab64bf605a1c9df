"""Triton paged prefill/extend attention: ragged query chunks over a cached prefix plus themselves.

One program takes a tile of BLOCK_M new tokens of one sequence for one query head and streams
the sequence's K/V from the paged cache (flash-attention style online softmax). Tokens sit at
context positions [seq_len - q_len, seq_len) and attend causally, so chunked prefill, prefix
cache hits and single-token decodes in the same batch all take the same path.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ponder.kernels.triton_decode_attention import INTERPRETING, LOG2_E

# (BLOCK_M, BLOCK_N, num_warps, num_stages) for 16-bit inputs with long and short query chunks
# (tuned on an H100); float32 (tests) keeps small tiles so registers don't spill.
LONG_QUERY_CONFIG = (128, 64, 8, 3)
SHORT_QUERY_CONFIG = (64, 64, 4, 3)
FLOAT32_CONFIG = (32, 32, 4, 2)


@triton.jit
def _prefill_kernel(
    query_ptr,
    k_cache_ptr,
    v_cache_ptr,
    block_tables_ptr,
    seq_lens_ptr,
    query_start_loc_ptr,
    out_ptr,
    scale_log2,
    stride_query_token,
    stride_query_head,
    stride_out_token,
    stride_out_head,
    stride_cache_block,
    stride_cache_token,
    stride_cache_head,
    stride_block_table,
    GROUP: tl.constexpr,
    HEAD_DIM: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_SIZE: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
    UPCAST: tl.constexpr,
):
    query_tile = tl.program_id(0)
    seq = tl.program_id(1)
    head = tl.program_id(2)
    kv_head = head // GROUP
    query_start = tl.load(query_start_loc_ptr + seq)
    query_len = tl.load(query_start_loc_ptr + seq + 1) - query_start
    if query_tile * BLOCK_M >= query_len:
        return
    seq_len = tl.load(seq_lens_ptr + seq)
    prefix_len = seq_len - query_len

    rows = query_tile * BLOCK_M + tl.arange(0, BLOCK_M)
    dims = tl.arange(0, BLOCK_D)
    row_mask = rows < query_len
    dim_mask = dims < HEAD_DIM
    query = tl.load(
        query_ptr
        + (query_start + rows)[:, None] * stride_query_token
        + head * stride_query_head
        + dims[None, :],
        mask=row_mask[:, None] & dim_mask[None, :],
        other=0.0,
    )
    if UPCAST:
        query = query.to(tl.float32)
    query_positions = prefix_len + rows
    running_max = tl.full([BLOCK_M], float("-inf"), tl.float32)
    running_sum = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    table_row = block_tables_ptr + seq * stride_block_table
    # Keys past the tile's last query position are masked for every row: don't read them.
    kv_end = tl.minimum(seq_len, prefix_len + (query_tile + 1) * BLOCK_M)
    # Tiles wholly before the tile's first query position need no causal mask.
    unmasked_end = (prefix_len + query_tile * BLOCK_M) // BLOCK_N * BLOCK_N
    for tile_start in range(0, kv_end, BLOCK_N):
        positions = tile_start + tl.arange(0, BLOCK_N)
        valid = positions < kv_end
        block = tl.load(table_row + positions // BLOCK_SIZE, mask=valid, other=0).to(tl.int64)
        token_offset = (
            block * stride_cache_block
            + (positions % BLOCK_SIZE) * stride_cache_token
            + kv_head * stride_cache_head
        )
        kv_offset = token_offset[:, None] + dims[None, :]
        kv_mask = valid[:, None] & dim_mask[None, :]
        keys = tl.load(k_cache_ptr + kv_offset, mask=kv_mask, other=0.0)
        if UPCAST:
            keys = keys.to(tl.float32)
        scores = tl.dot(query, tl.trans(keys), input_precision=DOT_PRECISION) * scale_log2
        if tile_start >= unmasked_end:
            causal = valid[None, :] & (positions[None, :] <= query_positions[:, None])
            scores = tl.where(causal, scores, float("-inf"))
        # Every row sees position 0 in the first tile, so running_max is finite from then on.
        new_max = tl.maximum(running_max, tl.max(scores, 1))
        probs = tl.exp2(scores - new_max[:, None])
        correction = tl.exp2(running_max - new_max)
        running_sum = running_sum * correction + tl.sum(probs, 1)
        values = tl.load(v_cache_ptr + kv_offset, mask=kv_mask, other=0.0)
        if UPCAST:
            values = values.to(tl.float32)
        acc = acc * correction[:, None] + tl.dot(
            probs.to(values.dtype), values, input_precision=DOT_PRECISION
        )
        running_max = new_max

    result = acc / running_sum[:, None]
    tl.store(
        out_ptr + (query_start + rows)[:, None] * stride_out_token + head * stride_out_head + dims[None, :],
        result.to(out_ptr.dtype.element_ty),
        mask=row_mask[:, None] & dim_mask[None, :],
    )


def prefill_attention(
    query: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    block_tables: torch.Tensor,
    seq_lens: torch.Tensor,
    query_start_loc: torch.Tensor,
    max_query_len: int,
    scale: float,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """query [T, Hq, D] flat over sequences (query_start_loc [S + 1]) -> [T, Hq, D].

    Sequence i's tokens sit at context positions [seq_lens[i] - q_len_i, seq_lens[i]) and are
    already in the cache; max_query_len bounds the grid.
    """
    num_tokens, num_heads, head_dim = query.shape
    _, block_size, num_kv_heads, _ = k_cache.shape
    if out is None:
        out = torch.empty_like(query)
    num_seqs = seq_lens.shape[0]
    if num_tokens == 0 or num_seqs == 0:
        return out
    if query.stride(-1) != 1:
        query = query.contiguous()
    low_precision = query.dtype != torch.float32
    if not low_precision:
        block_m, block_n, num_warps, num_stages = FLOAT32_CONFIG
    elif max_query_len > 64:
        block_m, block_n, num_warps, num_stages = LONG_QUERY_CONFIG
    else:
        block_m, block_n, num_warps, num_stages = SHORT_QUERY_CONFIG
    block_n = max(block_n, block_size)
    grid = (triton.cdiv(max_query_len, block_m), num_seqs, num_heads)
    _prefill_kernel[grid](
        query,
        k_cache,
        v_cache,
        block_tables,
        seq_lens,
        query_start_loc,
        out,
        scale * LOG2_E,
        query.stride(0),
        query.stride(1),
        out.stride(0),
        out.stride(1),
        k_cache.stride(0),
        k_cache.stride(1),
        k_cache.stride(2),
        block_tables.stride(0),
        GROUP=num_heads // num_kv_heads,
        HEAD_DIM=head_dim,
        BLOCK_D=triton.next_power_of_2(head_dim),
        BLOCK_SIZE=block_size,
        BLOCK_M=block_m,
        BLOCK_N=block_n,
        DOT_PRECISION="ieee" if not low_precision else "tf32",
        UPCAST=INTERPRETING,
        num_warps=num_warps,
        num_stages=num_stages,
    )
    return out
