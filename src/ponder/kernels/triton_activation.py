"""Triton SiLU-and-mul: [T, 2d] (gate | up) -> silu(gate) * up in one pass."""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _silu_and_mul_kernel(x_ptr, out_ptr, width, stride_x_row, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = cols < width
    gate = tl.load(x_ptr + row * stride_x_row + cols, mask=mask, other=0.0).to(tl.float32)
    up = tl.load(x_ptr + row * stride_x_row + width + cols, mask=mask, other=0.0)
    # Round silu(gate) to the activation dtype first, as the unfused F.silu(gate) * up does.
    activated = (gate / (1.0 + tl.exp(-gate))).to(x_ptr.dtype.element_ty).to(tl.float32)
    tl.store(
        out_ptr + row * width + cols,
        (activated * up.to(tl.float32)).to(out_ptr.dtype.element_ty),
        mask=mask,
    )


def silu_and_mul(x: torch.Tensor) -> torch.Tensor:
    """Same contract as layers.activation.SiluAndMul: [..., 2d] -> [..., d]."""
    width = x.shape[-1] // 2
    flat = x.reshape(-1, x.shape[-1])
    if flat.stride(-1) != 1:
        flat = flat.contiguous()
    out = torch.empty((flat.shape[0], width), dtype=x.dtype, device=x.device)
    if flat.shape[0] > 0:
        block = min(1024, triton.next_power_of_2(width))
        grid = (flat.shape[0], triton.cdiv(width, block))
        _silu_and_mul_kernel[grid](flat, out, width, flat.stride(0), BLOCK=block, num_warps=4)
    return out.view(*x.shape[:-1], width)
