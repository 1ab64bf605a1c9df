"""RMSNorm with an optional fused residual add, computed in float32 like the reference models."""

from __future__ import annotations

import torch
from torch import nn

from ponder.kernels.dispatch import use_triton


class RMSNorm(nn.Module):
    def __init__(self, hidden_size: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(hidden_size), requires_grad=False)

    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        # Cast back before the weight, as transformers does, so low-precision results match.
        return self.weight * x32.to(x.dtype)

    def forward(
        self, x: torch.Tensor, residual: torch.Tensor | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """forward(x) -> norm(x); forward(x, residual) -> (norm(x + residual), x + residual)."""
        if use_triton(x):
            # One kernel instead of ~8 elementwise ops: decode steps are launch-bound.
            from ponder.kernels.triton_rms_norm import fused_add_rms_norm, rms_norm

            if residual is None:
                return rms_norm(x, self.weight, self.eps)
            return fused_add_rms_norm(x, residual, self.weight, self.eps)
        if residual is None:
            return self._normalize(x)
        summed = x + residual
        return self._normalize(summed), summed
