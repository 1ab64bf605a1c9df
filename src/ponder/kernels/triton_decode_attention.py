"""Triton paged decode attention (one query token per sequence) with split-KV.

Each program takes one (sequence, KV head, split): the G query heads that share the KV head
are the rows of one tile, so K/V are read once per KV head. A long context is cut into
`num_splits` partitions that separate programs process in parallel; a second kernel merges
their partial results by log-sum-exp. The split count only sets the grid, and each program
derives its token range from the sequence length on the device, so a CUDA graph captured
with a fixed split count stays valid for any context length.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

LOG2_E = 1.4426950408889634
# Fewer tokens than this per split costs more in the merge than the extra parallelism gives.
MIN_TOKENS_PER_SPLIT = 256
MAX_SPLITS = 128
# Enough resident programs per SM to keep several loads in flight on each.
PROGRAMS_PER_SM = 2
# Tile of context tokens per loop step and warps per program (tuned on an H100).
DECODE_BLOCK_N = 64
DECODE_NUM_WARPS = 4
# The CPU interpreter's tl.dot mishandles 16-bit floats; there the kernels upcast dot operands.
INTERPRETING = os.environ.get("TRITON_INTERPRET") == "1"


@triton.jit
def _decode_kernel(
    query_ptr,
    k_cache_ptr,
    v_cache_ptr,
    block_tables_ptr,
    seq_lens_ptr,
    out_ptr,
    partial_out_ptr,
    partial_lse_ptr,
    scale_log2,
    num_splits,
    stride_query_token,
    stride_query_head,
    stride_out_token,
    stride_out_head,
    stride_cache_block,
    stride_cache_token,
    stride_cache_head,
    stride_block_table,
    GROUP: tl.constexpr,
    BLOCK_G: tl.constexpr,
    HEAD_DIM: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_SIZE: tl.constexpr,
    BLOCK_N: tl.constexpr,
    SINGLE_SPLIT: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
    UPCAST: tl.constexpr,
):
    seq = tl.program_id(0)
    kv_head = tl.program_id(1)
    split = tl.program_id(2)
    num_query_heads = tl.num_programs(1) * GROUP
    seq_len = tl.load(seq_lens_ptr + seq)
    tokens_per_split = tl.cdiv(tl.cdiv(seq_len, num_splits), BLOCK_N) * BLOCK_N
    start = split * tokens_per_split
    end = tl.minimum(start + tokens_per_split, seq_len)

    rows = tl.arange(0, BLOCK_G)
    dims = tl.arange(0, BLOCK_D)
    heads = kv_head * GROUP + rows
    row_mask = rows < GROUP
    dim_mask = dims < HEAD_DIM
    query = tl.load(
        query_ptr + seq * stride_query_token + heads[:, None] * stride_query_head + dims[None, :],
        mask=row_mask[:, None] & dim_mask[None, :],
        other=0.0,
    )
    if UPCAST:
        query = query.to(tl.float32)
    running_max = tl.full([BLOCK_G], float("-inf"), tl.float32)
    running_sum = tl.zeros([BLOCK_G], tl.float32)
    acc = tl.zeros([BLOCK_G, BLOCK_D], tl.float32)
    table_row = block_tables_ptr + seq * stride_block_table
    for tile_start in range(start, end, BLOCK_N):
        positions = tile_start + tl.arange(0, BLOCK_N)
        valid = positions < end
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
        scores = tl.where(valid[None, :], scores, float("-inf"))
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

    # An empty split (or a padded sequence of length 0) has sum 0: it writes zeros and lse -inf.
    safe_sum = tl.where(running_sum > 0, running_sum, 1.0)
    result = acc / safe_sum[:, None]
    out_mask = row_mask[:, None] & dim_mask[None, :]
    if SINGLE_SPLIT:
        out_offset = seq * stride_out_token + heads[:, None] * stride_out_head + dims[None, :]
        tl.store(out_ptr + out_offset, result.to(out_ptr.dtype.element_ty), mask=out_mask)
    else:
        partial_row = (seq * num_query_heads + heads) * num_splits + split
        tl.store(partial_out_ptr + partial_row[:, None] * HEAD_DIM + dims[None, :], result, mask=out_mask)
        lse = tl.where(running_sum > 0, running_max + tl.log2(safe_sum), float("-inf"))
        tl.store(partial_lse_ptr + partial_row, lse, mask=row_mask)


@triton.jit
def _merge_splits_kernel(
    partial_out_ptr,
    partial_lse_ptr,
    out_ptr,
    num_splits,
    stride_out_token,
    stride_out_head,
    HEAD_DIM: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_SPLITS: tl.constexpr,
):
    seq = tl.program_id(0)
    head = tl.program_id(1)
    splits = tl.arange(0, BLOCK_SPLITS)
    dims = tl.arange(0, BLOCK_D)
    split_mask = splits < num_splits
    first_row = (seq * tl.num_programs(1) + head) * num_splits
    lse = tl.load(partial_lse_ptr + first_row + splits, mask=split_mask, other=float("-inf"))
    max_lse = tl.max(lse, 0)
    max_lse = tl.where(max_lse == float("-inf"), 0.0, max_lse)
    weights = tl.exp2(lse - max_lse)
    total = tl.sum(weights, 0)
    total = tl.where(total > 0, total, 1.0)
    partials = tl.load(
        partial_out_ptr + (first_row + splits)[:, None] * HEAD_DIM + dims[None, :],
        mask=split_mask[:, None] & (dims < HEAD_DIM)[None, :],
        other=0.0,
    )
    result = tl.sum(partials * weights[:, None], 0) / total
    tl.store(
        out_ptr + seq * stride_out_token + head * stride_out_head + dims,
        result.to(out_ptr.dtype.element_ty),
        mask=dims < HEAD_DIM,
    )


def choose_num_splits(num_seqs: int, num_kv_heads: int, max_seq_len: int, num_sms: int) -> int:
    """Split the KV only when batch x KV heads leaves SMs idle, and never into tiny pieces."""
    wanted = -(-(PROGRAMS_PER_SM * num_sms) // max(1, num_seqs * num_kv_heads))
    useful = -(-max_seq_len // MIN_TOKENS_PER_SPLIT)
    return max(1, min(wanted, useful, MAX_SPLITS))


def decode_attention(
    query: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    block_tables: torch.Tensor,
    seq_lens: torch.Tensor,
    scale: float,
    num_splits: int,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """query [S, Hq, D] (one token per sequence) over its paged context -> [S, Hq, D].

    Caches are [num_blocks, block_size, Hkv, D]; seq_lens [S] counts the context including the
    query token (already stored); a sequence of length 0 yields zeros.
    """
    num_seqs, num_heads, head_dim = query.shape
    _, block_size, num_kv_heads, _ = k_cache.shape
    group = num_heads // num_kv_heads
    if out is None:
        out = torch.empty_like(query)
    if num_seqs == 0:
        return out
    if query.stride(-1) != 1:
        query = query.contiguous()
    single = num_splits == 1
    if single:
        partial_out = partial_lse = out  # unused by the kernel
    else:
        partial_out = torch.empty(
            (num_seqs, num_heads, num_splits, head_dim), dtype=torch.float32, device=query.device
        )
        partial_lse = torch.empty((num_seqs, num_heads, num_splits), dtype=torch.float32, device=query.device)
    _decode_kernel[(num_seqs, num_kv_heads, num_splits)](
        query,
        k_cache,
        v_cache,
        block_tables,
        seq_lens,
        out,
        partial_out,
        partial_lse,
        scale * LOG2_E,
        num_splits,
        query.stride(0),
        query.stride(1),
        out.stride(0),
        out.stride(1),
        k_cache.stride(0),
        k_cache.stride(1),
        k_cache.stride(2),
        block_tables.stride(0),
        GROUP=group,
        BLOCK_G=max(16, triton.next_power_of_2(group)),
        HEAD_DIM=head_dim,
        BLOCK_D=triton.next_power_of_2(head_dim),
        BLOCK_SIZE=block_size,
        BLOCK_N=max(DECODE_BLOCK_N, block_size),
        SINGLE_SPLIT=single,
        DOT_PRECISION="ieee" if query.dtype == torch.float32 else "tf32",
        UPCAST=INTERPRETING,
        num_warps=DECODE_NUM_WARPS,
    )
    if not single:
        _merge_splits_kernel[(num_seqs, num_heads)](
            partial_out,
            partial_lse,
            out,
            num_splits,
            out.stride(0),
            out.stride(1),
            HEAD_DIM=head_dim,
            BLOCK_D=triton.next_power_of_2(head_dim),
            BLOCK_SPLITS=triton.next_power_of_2(num_splits),
        )
    return out
