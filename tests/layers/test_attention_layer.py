"""Attention layer: stores K/V then attends over the paged cache; clear errors when not set up."""

from __future__ import annotations

import pytest
import torch

from ponder.kernels import paged_attention
from ponder.layers.attention import Attention
from ponder.layers.forward_context import forward_context
from tests.fixtures.paged_batch import build_attention_metadata


def bound_layer(num_blocks=4, block_size=4):
    layer = Attention(num_heads=4, num_kv_heads=2, head_dim=8, scale=0.3)
    layer.k_cache = torch.zeros(num_blocks, block_size, 2, 8)
    layer.v_cache = torch.zeros(num_blocks, block_size, 2, 8)
    return layer


def test_attention_writes_the_cache_then_matches_the_kernel():
    layer = bound_layer()
    metadata = build_attention_metadata([[2, 0], [3]], [6, 3], [6, 3], block_size=4)
    q, k, v = torch.randn(9, 4, 8), torch.randn(9, 2, 8), torch.randn(9, 2, 8)
    with forward_context(metadata):
        out = layer(q, k, v)
    assert torch.equal(layer.k_cache[2, 0], k[0]) and torch.equal(layer.v_cache[3, 2], v[8])
    expected = paged_attention(q, layer.k_cache, layer.v_cache, metadata, 0.3)
    torch.testing.assert_close(out, expected)


def test_unbound_cache_is_a_clear_error():
    layer = Attention(num_heads=4, num_kv_heads=2, head_dim=8, scale=0.3)
    metadata = build_attention_metadata([[0]], [1], [1], block_size=4)
    with forward_context(metadata), pytest.raises(RuntimeError, match="bind_kv_cache"):
        layer(torch.randn(1, 4, 8), torch.randn(1, 2, 8), torch.randn(1, 2, 8))


def test_outside_forward_context_is_a_clear_error():
    with pytest.raises(RuntimeError, match="forward_context"):
        bound_layer()(torch.randn(1, 4, 8), torch.randn(1, 2, 8), torch.randn(1, 2, 8))
