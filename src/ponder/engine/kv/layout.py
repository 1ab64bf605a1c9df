"""KVLayout: the shape of one engine's (one rank's) KV pool, from which its size in bytes follows."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch


@dataclass(frozen=True)
class KVLayout:
    """Per layer, a K and a V tensor of [num_blocks, block_size, num_kv_heads, head_dim].

    `num_kv_heads` is what this rank holds: under tensor parallelism the heads it computes, not
    the checkpoint's total (sizing the pool from the total makes it that many times too small)."""

    num_layers: int
    num_kv_heads: int
    head_dim: int
    block_size: int
    dtype: torch.dtype

    @cached_property
    def bytes_per_token(self) -> int:
        element_size = torch.empty((), dtype=self.dtype).element_size()
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim * element_size

    @property
    def bytes_per_block(self) -> int:
        return self.bytes_per_token * self.block_size

    def block_shape(self, num_blocks: int) -> tuple[int, int, int, int]:
        return (num_blocks, self.block_size, self.num_kv_heads, self.head_dim)
