"""Sweep the Triton attention kernels' tile configs on the GPU (Qwen3-8B attention shape).

Usage: PYTHONPATH=src python benchmarks/tune_attention.py
Prints, per config, decode time and fraction of copy bandwidth (32k x batch 1 and 4, 640 x 128)
and 8k-prefill attention TFLOP/s, so the module constants can be set from one run.
"""

from __future__ import annotations

import itertools

import torch
import triton.testing

import ponder.kernels.triton_decode_attention as decode_module
import ponder.kernels.triton_prefill_attention as prefill_module
from ponder.kernels.dispatch import decode_num_splits

HEADS, KV_HEADS, HEAD_DIM, BLOCK_SIZE = 32, 8, 128, 16


def paged_kv(batch: int, context: int):
    blocks = batch * (-(-context // BLOCK_SIZE))
    k_cache = torch.randn(blocks, BLOCK_SIZE, KV_HEADS, HEAD_DIM, dtype=torch.bfloat16, device="cuda")
    tables = torch.randperm(blocks, device="cuda", dtype=torch.int32).view(batch, -1)
    seq_lens = torch.full((batch,), context, dtype=torch.int32, device="cuda")
    return k_cache, torch.randn_like(k_cache), tables, seq_lens


def bandwidth() -> float:
    src = torch.randn(2**29, dtype=torch.bfloat16, device="cuda")
    dst = torch.empty_like(src)
    return 4 * src.numel() / (triton.testing.do_bench(lambda: dst.copy_(src), return_mode="median") / 1e3)


def time_decode(query, k_cache, v_cache, tables, seq_lens, splits: int) -> float:
    return triton.testing.do_bench(
        lambda: decode_module.decode_attention(
            query, k_cache, v_cache, tables, seq_lens, HEAD_DIM**-0.5, splits
        ),
        return_mode="median",
    )


def tune_decode(copy_bw: float) -> None:
    for batch, context in ((1, 32768), (4, 32768), (128, 640)):
        k_cache, v_cache, tables, seq_lens = paged_kv(batch, context)
        query = torch.randn(batch, HEADS, HEAD_DIM, dtype=torch.bfloat16, device="cuda")
        kv_bytes = 2 * batch * context * KV_HEADS * HEAD_DIM * 2
        for programs_per_sm, block_n, warps in itertools.product((2, 4, 8), (32, 64, 128), (4, 8)):
            if batch == 128 and programs_per_sm != 4:
                continue
            decode_module.PROGRAMS_PER_SM = programs_per_sm
            decode_module.DECODE_BLOCK_N, decode_module.DECODE_NUM_WARPS = block_n, warps
            splits = decode_num_splits(batch, KV_HEADS, context, torch.device("cuda"))
            ms = time_decode(query, k_cache, v_cache, tables, seq_lens, splits)
            print(
                f"decode b={batch:3d} ctx={context:5d} pps={programs_per_sm} splits={splits:3d} "
                f"BLOCK_N={block_n:3d} warps={warps}: {ms * 1e3:8.1f} us "
                f"{kv_bytes / (ms / 1e3) / copy_bw:5.2f} of copy bw",
                flush=True,
            )
        del k_cache, v_cache


def tune_prefill(matmul_peak: float) -> None:
    length = 8192
    k_cache, v_cache, tables, seq_lens = paged_kv(1, length)
    query = torch.randn(length, HEADS, HEAD_DIM, dtype=torch.bfloat16, device="cuda")
    starts = torch.tensor([0, length], dtype=torch.int32, device="cuda")
    flops = 2 * HEADS * HEAD_DIM * length * length  # causal: half of 4 * H * D * L^2
    for config in (
        (128, 64, 8, 2),
        (128, 64, 8, 3),
        (128, 128, 8, 2),
        (64, 64, 4, 3),
        (128, 32, 4, 3),
        (64, 128, 4, 2),
        (128, 64, 4, 3),
    ):
        prefill_module.LONG_QUERY_CONFIG = config
        ms = triton.testing.do_bench(
            lambda: prefill_module.prefill_attention(
                query, k_cache, v_cache, tables, seq_lens, starts, length, HEAD_DIM**-0.5
            ),
            return_mode="median",
        )
        print(
            f"prefill 8k config={config}: {ms:7.2f} ms {flops / (ms / 1e3) / 1e12:6.1f} TFLOP/s "
            f"({flops / (ms / 1e3) / matmul_peak:.2f} of matmul peak)",
            flush=True,
        )


def main() -> None:
    copy_bw = bandwidth()
    a = torch.randn(8192, 8192, dtype=torch.bfloat16, device="cuda")
    peak = 2 * 8192**3 / (triton.testing.do_bench(lambda: a @ a, return_mode="median") / 1e3)
    print(f"copy bandwidth {copy_bw / 1e9:.0f} GB/s, bf16 matmul {peak / 1e12:.0f} TFLOP/s")
    tune_prefill(peak)
    tune_decode(copy_bw)


if __name__ == "__main__":
    main()
