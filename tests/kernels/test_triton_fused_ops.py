"""Triton store_kv, RMSNorm (+ residual), SiLU-and-mul and rotary equal their torch references."""

from __future__ import annotations

import pytest
import torch

from ponder.kernels.paged_attention import store_kv as reference_store_kv
from ponder.layers.activation import SiluAndMul
from ponder.layers.norm import RMSNorm
from ponder.layers.rotary import RotaryEmbedding

DTYPES = [torch.float32, torch.bfloat16]


def tolerance(dtype: torch.dtype) -> dict[str, float]:
    return {"atol": 1e-5, "rtol": 1e-5} if dtype == torch.float32 else {"atol": 0.02, "rtol": 0.02}


def test_store_kv_matches_reference_and_skips_minus_one(device):
    from ponder.kernels.triton_store_kv import store_kv

    gen = torch.Generator().manual_seed(0)
    qkv = torch.randn(5, 4 + 2 * 2, 64, generator=gen)  # a fused qkv: k and v are strided views
    key, value = qkv[:, 4:6], qkv[:, 6:8]
    slots = torch.tensor([3, -1, 40, 17, 0])
    k_cache = torch.randn(3, 16, 2, 64, generator=gen)
    v_cache = torch.randn(3, 16, 2, 64, generator=gen)
    want_k, want_v = k_cache.clone(), v_cache.clone()
    reference_store_kv(key, value, want_k, want_v, slots)
    got_k, got_v = k_cache.to(device), v_cache.to(device)
    store_kv(key.to(device), value.to(device), got_k, got_v, slots.to(device))
    assert torch.equal(got_k.cpu(), want_k) and torch.equal(got_v.cpu(), want_v)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rms_norm_and_fused_residual_add_match_reference(dtype, device):
    from ponder.kernels.triton_rms_norm import fused_add_rms_norm, rms_norm

    gen = torch.Generator().manual_seed(1)
    norm = RMSNorm(96, eps=1e-6).to(dtype)
    norm.weight.data = torch.randn(96, generator=gen).to(dtype)
    x = torch.randn(7, 96, generator=gen).to(dtype)
    residual = torch.randn(7, 96, generator=gen).to(dtype)
    weight = norm.weight.to(device)
    torch.testing.assert_close(rms_norm(x.to(device), weight, 1e-6).cpu(), norm(x), **tolerance(dtype))
    out, summed = fused_add_rms_norm(x.to(device), residual.to(device), weight, 1e-6)
    want_out, want_summed = norm(x, residual)
    # The interpreter rounds float32 -> bfloat16 toward zero: allow one bfloat16 step.
    torch.testing.assert_close(
        summed.cpu(), want_summed, atol=0, rtol=1e-5 if dtype == torch.float32 else 8e-3
    )
    torch.testing.assert_close(out.cpu(), want_out, **tolerance(dtype))


def test_rms_norm_of_strided_head_view_matches_reference(device):
    from ponder.kernels.triton_rms_norm import rms_norm

    gen = torch.Generator().manual_seed(2)
    qkv = torch.randn(3, 6 * 32, generator=gen)
    heads = qkv[:, 32 : 4 * 32].view(3, 3, 32)  # per-head q norm on a strided slice of qkv
    norm = RMSNorm(32)
    norm.weight.data = torch.randn(32, generator=gen)
    got = rms_norm(qkv.to(device)[:, 32 : 4 * 32].view(3, 3, 32), norm.weight.to(device), 1e-6)
    torch.testing.assert_close(got.cpu(), norm(heads), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_silu_and_mul_matches_reference(dtype, device):
    from ponder.kernels.triton_activation import silu_and_mul

    x = torch.randn(4, 2 * 80, generator=torch.Generator().manual_seed(3)).to(dtype)
    torch.testing.assert_close(silu_and_mul(x.to(device)).cpu(), SiluAndMul()(x), **tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("head_dim", [64, 128])
def test_rotary_matches_reference(dtype, head_dim, device):
    from ponder.kernels.triton_rotary import apply_rotary

    gen = torch.Generator().manual_seed(4)
    rotary = RotaryEmbedding(head_dim, max_position=512, base=10000.0)
    qkv = torch.randn(6, (4 + 2 + 2) * head_dim, generator=gen).to(dtype)
    query = qkv[:, : 4 * head_dim].view(6, 4, head_dim)
    key = qkv[:, 4 * head_dim : 6 * head_dim].view(6, 2, head_dim)
    positions = torch.tensor([0, 1, 17, 200, 511, 3])
    want_q, want_k = rotary(positions, query, key)
    qkv_device = qkv.to(device)
    got_q, got_k = apply_rotary(
        positions.to(device),
        qkv_device[:, : 4 * head_dim].view(6, 4, head_dim),
        qkv_device[:, 4 * head_dim : 6 * head_dim].view(6, 2, head_dim),
        rotary.cos_cache.to(device),
        rotary.sin_cache.to(device),
    )
    torch.testing.assert_close(got_q.cpu(), want_q, **tolerance(dtype))
    torch.testing.assert_close(got_k.cpu(), want_k, **tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_rotary_fused_with_qk_norm_matches_norm_then_rotary(dtype, device):
    from ponder.kernels.triton_rotary import apply_rotary

    gen = torch.Generator().manual_seed(6)
    head_dim = 64
    rotary = RotaryEmbedding(head_dim, max_position=512, base=10000.0)
    q_norm, k_norm = RMSNorm(head_dim).to(dtype), RMSNorm(head_dim).to(dtype)
    q_norm.weight.data = torch.randn(head_dim, generator=gen).to(dtype)
    k_norm.weight.data = torch.randn(head_dim, generator=gen).to(dtype)
    qkv = 3 * torch.randn(5, (4 + 2 + 2) * head_dim, generator=gen).to(dtype)
    positions = torch.tensor([0, 9, 300, 511, 2])

    def split(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return t[:, : 4 * head_dim].view(5, 4, head_dim), t[:, 4 * head_dim : 6 * head_dim].view(
            5, 2, head_dim
        )

    want_q, want_k = rotary(positions, q_norm(split(qkv)[0]), k_norm(split(qkv)[1]))
    assert torch.equal(rotary(positions, *split(qkv), (q_norm, k_norm))[0], want_q)  # the torch path
    weights = (q_norm.weight.to(device), k_norm.weight.to(device))
    got_q, got_k = apply_rotary(
        positions.to(device),
        *split(qkv.to(device)),
        rotary.cos_cache.to(device),
        rotary.sin_cache.to(device),
        weights,
        q_norm.eps,
    )
    # bfloat16: four roundings in a row (norm, weight, two products), and the interpreter rounds
    # toward zero, so allow a few bfloat16 steps of these O(3) values.
    close = tolerance(dtype) if dtype == torch.float32 else {"atol": 0.07, "rtol": 0.02}
    torch.testing.assert_close(got_q.cpu(), want_q, **close)
    torch.testing.assert_close(got_k.cpu(), want_k, **close)


@pytest.mark.parametrize("dtype", DTYPES)
def test_argmax_logsumexp_matches_torch_with_ties_and_masked_blocks(dtype, device):
    from ponder.kernels import triton_argmax_lse

    gen = torch.Generator().manual_seed(5)
    logits = torch.randn(4, 1000, generator=gen).to(dtype)
    logits[1, 10] = logits[1, 900] = 9.0  # a tie across blocks: the first index wins
    logits[2, :600] = -torch.inf  # whole leading blocks masked out
    logits[3, 512] = logits[3, 513] = 9.0  # a tie inside one block
    original = triton_argmax_lse.BLOCK
    triton_argmax_lse.BLOCK = 256  # several blocks per row on a small vocabulary
    try:
        argmax, lse = triton_argmax_lse.argmax_logsumexp(logits.to(device))
    finally:
        triton_argmax_lse.BLOCK = original
    assert torch.equal(argmax.cpu(), logits.argmax(dim=-1))
    assert argmax.cpu().tolist()[1] == 10 and argmax.cpu().tolist()[3] == 512
    torch.testing.assert_close(lse.cpu(), torch.logsumexp(logits.float(), dim=-1), atol=1e-5, rtol=1e-5)
