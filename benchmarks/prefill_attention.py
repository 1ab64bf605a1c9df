"""Prefill attention of one fresh prompt: the paged Triton kernel vs torch SDPA's backends (GPU).

    PYTHONPATH=src:. python3 benchmarks/prefill_attention.py --lengths 2048,8192,32768

Times causal attention of a prompt with no cached prefix (what `sdpa_prefill` replaces) at the
8B shape (32 query heads, 8 KV heads, head dim 128) and prints ms and TFLOP/s per backend, all in
the same process so the figures compare. Each backend's output is checked against the Triton one.
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F
from benchmarks.throughput import cuda_time
from torch.nn.attention import SDPBackend, sdpa_kernel

from ponder.kernels.sdpa_prefill import fresh_prefill_attention
from ponder.kernels.triton_prefill_attention import prefill_attention
from ponder.kernels.triton_store_kv import store_kv

BACKENDS = {
    "flash": SDPBackend.FLASH_ATTENTION,
    "cudnn": SDPBackend.CUDNN_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
}


def run(length: int, heads: int, kv_heads: int, head_dim: int, repeats: int) -> dict:
    torch.manual_seed(0)
    device, dtype, block_size = "cuda", torch.bfloat16, 16
    q = torch.randn(length, heads, head_dim, device=device, dtype=dtype)
    k = torch.randn(length, kv_heads, head_dim, device=device, dtype=dtype)
    v = torch.randn(length, kv_heads, head_dim, device=device, dtype=dtype)
    num_blocks = -(-length // block_size)
    k_cache = torch.empty(num_blocks, block_size, kv_heads, head_dim, device=device, dtype=dtype)
    v_cache = torch.empty_like(k_cache)
    store_kv(k, v, k_cache, v_cache, torch.arange(length, device=device))
    tables = torch.arange(num_blocks, device=device, dtype=torch.int32)[None]
    seq_lens = torch.tensor([length], device=device, dtype=torch.int32)
    starts = torch.tensor([0, length], device=device, dtype=torch.int32)
    scale = head_dim**-0.5
    flops = 2 * length * length * heads * head_dim  # causal: half of 4 n^2 H D

    def triton_paged():
        return prefill_attention(q, k_cache, v_cache, tables, seq_lens, starts, length, scale)

    reference = triton_paged()
    result = {"length": length, "heads": heads, "kv_heads": kv_heads, "head_dim": head_dim}
    # cuDNN may refuse GQA: the same backend on K/V expanded to every query head.
    expanded = (k.repeat_interleave(heads // kv_heads, dim=1), v.repeat_interleave(heads // kv_heads, dim=1))

    def sdpa(backend: SDPBackend, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        with sdpa_kernel([backend]):
            qh, kh, vh = (t.transpose(0, 1)[None] for t in (q, keys, values))
            gqa = keys.shape[1] != heads
            return F.scaled_dot_product_attention(qh, kh, vh, is_causal=True, scale=scale, enable_gqa=gqa)[
                0
            ].transpose(0, 1)

    cells = {
        "triton_paged": triton_paged,
        "ponder_sdpa_prefill": lambda: fresh_prefill_attention(q, k, v, [length], scale),
    }
    for name, backend in BACKENDS.items():
        cells[f"sdpa_{name}"] = lambda backend=backend: sdpa(backend, k, v)
    cells["sdpa_cudnn_expanded_kv"] = lambda: sdpa(SDPBackend.CUDNN_ATTENTION, *expanded)
    for name, fn in cells.items():
        try:
            out = fn()
            error = (out.float() - reference.float()).abs().max().item()
            ms = cuda_time(fn, repeats, warmup=2) * 1e3
            result[name] = {"ms": round(ms, 3), "tflops": round(flops / ms / 1e9, 1), "max_abs_diff": error}
        except Exception as exc:  # a backend that does not take this shape
            result[name] = {"error": f"{type(exc).__name__}: {str(exc)[:160]}"}
        print(name, result[name], flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lengths", default="2048,8192,32768")
    parser.add_argument("--heads", type=int, default=32)
    parser.add_argument("--kv-heads", type=int, default=8)
    parser.add_argument("--head-dim", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    print(torch.__version__, torch.cuda.get_device_name())
    results = [
        run(int(n), args.heads, args.kv_heads, args.head_dim, args.repeats) for n in args.lengths.split(",")
    ]
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
