"""Triton RMSNorm, optionally fused with the residual add: one pass over each row."""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _rms_norm_kernel(
    x_ptr,
    residual_ptr,
    weight_ptr,
    out_ptr,
    summed_ptr,
    eps,
    num_inner_rows,
    stride_x_outer,
    stride_x_inner,
    stride_residual_row,
    hidden_size,
    HAS_RESIDUAL: tl.constexpr,
    BLOCK: tl.constexpr,
):
    # Rows are (outer, inner) pairs so a strided [T, H, D] view (q/k heads) needs no copy.
    row = tl.program_id(0)
    outer = row // num_inner_rows
    inner = row % num_inner_rows
    cols = tl.arange(0, BLOCK)
    mask = cols < hidden_size
    x = tl.load(x_ptr + outer * stride_x_outer + inner * stride_x_inner + cols, mask=mask, other=0.0)
    if HAS_RESIDUAL:
        residual = tl.load(residual_ptr + row * stride_residual_row + cols, mask=mask, other=0.0)
        # Rounded to the activation dtype as the unfused `x + residual` would be.
        x = (x.to(tl.float32) + residual.to(tl.float32)).to(x_ptr.dtype.element_ty)
        tl.store(summed_ptr + row * hidden_size + cols, x, mask=mask)
    x32 = x.to(tl.float32)
    inv_rms = tl.rsqrt(tl.sum(x32 * x32, 0) / hidden_size + eps)
    # Cast back before the weight, as the reference (and transformers) does.
    normed = (x32 * inv_rms).to(x_ptr.dtype.element_ty).to(tl.float32)
    weight = tl.load(weight_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    tl.store(out_ptr + row * hidden_size + cols, (weight * normed).to(out_ptr.dtype.element_ty), mask=mask)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """norm(x) * weight over the last dim; x may be a strided [T, H, D] view of a fused qkv."""
    out = torch.empty(x.shape, dtype=torch.promote_types(x.dtype, weight.dtype), device=x.device)
    if x.dim() == 3 and x.stride(2) == 1:
        num_rows, inner, stride_outer, stride_inner = (
            x.shape[0] * x.shape[1],
            x.shape[1],
            x.stride(0),
            x.stride(1),
        )
    else:
        x = x.reshape(-1, x.shape[-1]).contiguous()
        num_rows, inner, stride_outer, stride_inner = x.shape[0], 1, x.stride(0), 0
    _launch(x, x, weight, out, out, eps, num_rows, inner, stride_outer, stride_inner, 0, False)
    return out


def fused_add_rms_norm(
    x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(norm(x + residual) * weight, x + residual) for 2-D x and residual."""
    x, residual = x.contiguous(), residual.contiguous()
    out = torch.empty(x.shape, dtype=torch.promote_types(x.dtype, weight.dtype), device=x.device)
    summed = torch.empty_like(x)
    num_rows = x.shape[0]
    _launch(x, residual, weight, out, summed, eps, num_rows, 1, x.stride(0), 0, residual.stride(0), True)
    return out, summed


def _launch(
    x,
    residual,
    weight,
    out,
    summed,
    eps,
    num_rows,
    inner,
    stride_outer,
    stride_inner,
    stride_residual,
    has_residual,
) -> None:
    hidden_size = x.shape[-1]
    if num_rows == 0:
        return
    block = triton.next_power_of_2(hidden_size)
    _rms_norm_kernel[(num_rows,)](
        x,
        residual,
        weight,
        out,
        summed,
        eps,
        inner,
        stride_outer,
        stride_inner,
        stride_residual,
        hidden_size,
        HAS_RESIDUAL=has_residual,
        BLOCK=block,
        num_warps=num_warps_for(block),
    )


def num_warps_for(block: int) -> int:
    """Warps per row (benchmarks/tune_rms_norm.py sweeps this)."""
    return min(16, max(1, block // 256))
