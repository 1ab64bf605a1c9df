"""Rotary position embedding (neox half-rotation layout) applied by a positions tensor."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ponder.errors import UnsupportedModelError
from ponder.kernels.dispatch import use_triton
from ponder.layers.norm import RMSNorm

SUPPORTED_ROPE_TYPES = ("default", "linear", "llama3")


def rope_type_of(rope_scaling: Mapping[str, Any] | None) -> str:
    if not rope_scaling:
        return "default"
    return str(rope_scaling.get("rope_type", rope_scaling.get("type", "default")))


def compute_inv_freq(head_dim: int, base: float, rope_scaling: Mapping[str, Any] | None) -> torch.Tensor:
    """Inverse frequencies [head_dim // 2] (float32) for the configured RoPE scaling type."""
    exponents = torch.arange(0, head_dim, 2, dtype=torch.int64).to(torch.float32) / head_dim
    inv_freq = 1.0 / (base**exponents)
    rope_type = rope_type_of(rope_scaling)
    if rope_type == "default":
        return inv_freq
    assert rope_scaling is not None
    try:
        if rope_type == "linear":
            return inv_freq / float(rope_scaling["factor"])
        if rope_type == "llama3":
            return _llama3_inv_freq(inv_freq, rope_scaling)
    except KeyError as missing:
        raise UnsupportedModelError(
            f"rope_scaling of type {rope_type!r} is missing the key {missing}"
        ) from None
    raise UnsupportedModelError(
        f"rope_scaling type {rope_type!r} is not supported; supported: {', '.join(SUPPORTED_ROPE_TYPES)}"
    )


def _llama3_inv_freq(inv_freq: torch.Tensor, scaling: Mapping[str, Any]) -> torch.Tensor:
    # Llama 3.1: long wavelengths are slowed by `factor`, short ones kept, the band between blended.
    factor = float(scaling["factor"])
    low_freq_factor = float(scaling["low_freq_factor"])
    high_freq_factor = float(scaling["high_freq_factor"])
    original_context = float(scaling["original_max_position_embeddings"])
    wavelength = 2 * math.pi / inv_freq
    scaled = torch.where(wavelength > original_context / low_freq_factor, inv_freq / factor, inv_freq)
    smooth = (original_context / wavelength - low_freq_factor) / (high_freq_factor - low_freq_factor)
    blended = (1 - smooth) * scaled / factor + smooth * scaled
    is_medium = ~(wavelength < original_context / high_freq_factor) & ~(
        wavelength > original_context / low_freq_factor
    )
    return torch.where(is_medium, blended, scaled)


class RotaryEmbedding(nn.Module):
    """Rotates query/key heads by their token's position; cos/sin precomputed in float32."""

    def __init__(
        self,
        head_dim: int,
        max_position: int,
        base: float,
        rope_scaling: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.head_dim = head_dim
        inv_freq = compute_inv_freq(head_dim, base, rope_scaling)
        positions = torch.arange(max_position, dtype=torch.float32)
        angles = torch.outer(positions, inv_freq)  # [max_position, head_dim // 2]
        self.register_buffer("cos_cache", angles.cos(), persistent=False)
        self.register_buffer("sin_cache", angles.sin(), persistent=False)

    def _rotate(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        first, second = x.chunk(2, dim=-1)
        return torch.cat((first * cos - second * sin, second * cos + first * sin), dim=-1)

    def forward(
        self,
        positions: torch.Tensor,
        query: torch.Tensor,
        key: torch.Tensor,
        norms: tuple[RMSNorm, RMSNorm] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """positions [T]; query [T, Hq, D], key [T, Hkv, D] -> rotated (query, key); with
        norms (q_norm, k_norm), each head is RMS-normalized before it is rotated."""
        if use_triton(query):
            from ponder.kernels.triton_rotary import apply_rotary

            weights = (norms[0].weight, norms[1].weight) if norms else None
            eps = norms[0].eps if norms else 0.0
            return apply_rotary(positions, query, key, self.cos_cache, self.sin_cache, weights, eps)
        if norms:
            query, key = norms[0](query), norms[1](key)
        cos = self.cos_cache[positions].unsqueeze(1).to(query.dtype)  # [T, 1, D/2]
        sin = self.sin_cache[positions].unsqueeze(1).to(query.dtype)
        return self._rotate(query, cos, sin), self._rotate(key, cos, sin)
