"""Attention layer over the paged KV cache: stores this step's K/V, then attends."""

from __future__ import annotations

import torch
from torch import nn

from ponder.kernels.dispatch import paged_attention, store_kv
from ponder.layers.forward_context import get_attention_metadata


class Attention(nn.Module):
    """Paged causal attention; k_cache/v_cache [num_blocks, block_size, Hkv, D] are bound later."""

    def __init__(self, num_heads: int, num_kv_heads: int, head_dim: int, scale: float) -> None:
        super().__init__()
        self.num_heads, self.num_kv_heads, self.head_dim = num_heads, num_kv_heads, head_dim
        self.scale = scale
        # Plain attributes, not buffers: the engine owns the KV pool and its memory.
        self.k_cache: torch.Tensor | None = None
        self.v_cache: torch.Tensor | None = None

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """query [T, Hq, D], key/value [T, Hkv, D] -> [T, Hq, D]."""
        if self.k_cache is None or self.v_cache is None:
            raise RuntimeError(
                "attention KV cache is not bound; call model.bind_kv_cache(...) before forward"
            )
        metadata = get_attention_metadata()
        store_kv(key, value, self.k_cache, self.v_cache, metadata.slot_mapping)
        return paged_attention(query, self.k_cache, self.v_cache, metadata, self.scale, key, value)
