"""Sweep the Triton fused add + RMSNorm kernel's warps per row on the GPU (decode and prefill rows).

Usage: PYTHONPATH=src python benchmarks/tune_rms_norm.py
Prints, per (rows, hidden) and warps, the kernel time and its bandwidth (x, residual read; out,
summed written), so `num_warps_for` in kernels/triton_rms_norm.py can be set from one run.
"""

from __future__ import annotations

import torch
import triton.testing

import ponder.kernels.triton_rms_norm as module

SHAPES = [(128, 1024), (128, 4096), (8192, 1024), (8192, 4096)]  # decode batch 128; 8k prefill
WARPS = [1, 2, 4, 8, 16]


def main() -> None:
    default = module.num_warps_for
    print(torch.cuda.get_device_name())
    for rows, hidden in SHAPES:
        x = torch.randn(rows, hidden, dtype=torch.bfloat16, device="cuda")
        residual, weight = torch.randn_like(x), torch.randn(hidden, dtype=torch.bfloat16, device="cuda")
        moved = 4 * x.numel() * x.element_size()
        line = [f"{rows}x{hidden} (default {default(triton.next_power_of_2(hidden))} warps):"]
        for warps in WARPS:
            module.num_warps_for = lambda block, warps=warps: warps
            args = (x, residual, weight, 1e-6)
            us = triton.testing.do_bench(lambda args=args: module.fused_add_rms_norm(*args)) * 1e3
            line.append(f"{warps}w {us:.1f} us {moved / us / 1e3:.0f} GB/s")
        module.num_warps_for = default
        print("  ".join(line), flush=True)


if __name__ == "__main__":
    main()
