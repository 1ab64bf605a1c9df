"""The few-row CPU linear computes what F.linear does, for every row count and with a bias."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ponder.kernels.cpu_linear import SMALL_ROWS_MAX, linear


@pytest.mark.parametrize("rows", range(1, SMALL_ROWS_MAX + 3))
@pytest.mark.parametrize("with_bias", [False, True])
def test_matches_f_linear(rows, with_bias):
    gen = torch.Generator().manual_seed(rows)
    x = torch.randn(rows, 48, generator=gen)
    weight = torch.randn(80, 48, generator=gen)
    bias = torch.randn(80, generator=gen) if with_bias else None
    out = linear(x, weight, bias)
    assert out.shape == (rows, 80) and out.is_contiguous()
    torch.testing.assert_close(out, F.linear(x, weight, bias), atol=1e-5, rtol=1e-5)


def test_other_dtypes_and_shapes_go_through_f_linear():
    weight = torch.randn(16, 8, dtype=torch.bfloat16)
    x = torch.randn(3, 8, dtype=torch.bfloat16)
    assert torch.equal(linear(x, weight), F.linear(x, weight))
    x3 = torch.randn(2, 3, 8)
    assert torch.equal(linear(x3, weight.float()), F.linear(x3, weight.float()))
