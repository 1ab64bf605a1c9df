"""RMSNorm: matches transformers' norm, and the fused residual add returns the sum."""

from __future__ import annotations

import torch
from transformers.models.llama.modeling_llama import LlamaRMSNorm

from ponder.layers.norm import RMSNorm


def norms(dtype):
    weight = 1 + 0.3 * torch.randn(16)
    ours, theirs = RMSNorm(16, eps=1e-5), LlamaRMSNorm(16, eps=1e-5)
    with torch.no_grad():
        ours.weight.copy_(weight)
        theirs.weight.copy_(weight)
    return ours.to(dtype), theirs.to(dtype)


def test_rms_norm_equals_transformers_in_float32_and_bfloat16():
    for dtype in (torch.float32, torch.bfloat16):
        ours, theirs = norms(dtype)
        x = torch.randn(5, 16).to(dtype) * 3
        assert torch.equal(ours(x), theirs(x))


def test_fused_residual_returns_norm_of_sum_and_the_sum():
    ours, theirs = norms(torch.float32)
    x, residual = torch.randn(5, 16), torch.randn(5, 16)
    normed, summed = ours(x, residual)
    torch.testing.assert_close(summed, x + residual)
    torch.testing.assert_close(normed, theirs(x + residual))
