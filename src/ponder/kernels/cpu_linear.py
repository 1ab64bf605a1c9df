"""y = x W^T (+ b), with a faster form for a few rows on a CPU (a decode verifying drafts).

For 2..SMALL_ROWS_MAX rows of float32, MKL's GEMM for x W^T cost ~1.9x its one-row GEMV on the
built-in model's weights; the same product as (W x^T)^T ran ~20% faster for 2-5 rows and no
faster from 6 on (a 2-core AVX2 host, one thread, weights streamed from memory:
docs/results/speculative.md). One row, more rows, other dtypes and GPUs: F.linear as before.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SMALL_ROWS_MAX = 5


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    if x.dim() != 2 or not 2 <= x.shape[0] <= SMALL_ROWS_MAX or x.is_cuda or x.dtype != torch.float32:
        return F.linear(x, weight, bias)
    y = torch.mm(weight, x.t()).t().contiguous()
    return y if bias is None else y.add_(bias)
