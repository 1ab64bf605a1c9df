"""Rotary embedding equals transformers' RoPE for each supported scaling type."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

from ponder.errors import UnsupportedModelError
from ponder.layers.rotary import RotaryEmbedding

HEAD_DIM, MAX_POSITION, THETA = 16, 256, 500.0
SCALINGS = [
    None,
    {"rope_type": "linear", "factor": 3.0},
    {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 16,
    },
]


def transformers_rope(scaling, positions, q, k):
    config = LlamaConfig(
        hidden_size=HEAD_DIM * 2,
        num_attention_heads=2,
        max_position_embeddings=MAX_POSITION,
        rope_parameters={"rope_type": "default", "rope_theta": THETA, **(scaling or {})},
    )
    cos, sin = LlamaRotaryEmbedding(config)(q, positions[None])
    # transformers wants [batch, heads, seq, dim]
    q_out, k_out = apply_rotary_pos_emb(q.transpose(0, 1)[None], k.transpose(0, 1)[None], cos, sin)
    return q_out[0].transpose(0, 1), k_out[0].transpose(0, 1)


@pytest.mark.parametrize("scaling", SCALINGS, ids=["default", "linear", "llama3"])
def test_rotary_matches_transformers(scaling):
    positions = torch.tensor([0, 1, 7, 100, 255, 3])
    q, k = torch.randn(6, 4, HEAD_DIM), torch.randn(6, 2, HEAD_DIM)
    ours = RotaryEmbedding(HEAD_DIM, MAX_POSITION, THETA, scaling)(positions, q, k)
    theirs = transformers_rope(scaling, positions, q, k)
    torch.testing.assert_close(ours[0], theirs[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours[1], theirs[1], atol=1e-5, rtol=1e-5)


def test_rotation_preserves_norm_and_position_zero_is_identity():
    rope = RotaryEmbedding(HEAD_DIM, MAX_POSITION, THETA)
    q, k = torch.randn(2, 1, HEAD_DIM), torch.randn(2, 1, HEAD_DIM)
    q_rot, k_rot = rope(torch.tensor([0, 50]), q, k)
    torch.testing.assert_close(q_rot[0], q[0])
    torch.testing.assert_close(q_rot.norm(dim=-1), q.norm(dim=-1))
    assert not torch.allclose(k_rot[1], k[1])


@pytest.mark.parametrize("rope_type", ["yarn", "dynamic", "made-up"])
def test_unsupported_rope_type_raises(rope_type):
    with pytest.raises(UnsupportedModelError, match=rope_type):
        RotaryEmbedding(HEAD_DIM, MAX_POSITION, THETA, {"rope_type": rope_type, "factor": 2.0})


def test_missing_scaling_key_is_named():
    with pytest.raises(UnsupportedModelError, match="low_freq_factor"):
        RotaryEmbedding(HEAD_DIM, MAX_POSITION, THETA, {"rope_type": "llama3", "factor": 8.0})
