"""The wire form of a prompt's KV: token-major per layer, so sender and receiver may use
different block sizes (the receiver re-blocks on load), plus a manifest with per-block checksums."""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass, field

import torch

# One layer's K or V for the transferred tokens: [num_tokens, num_kv_heads, head_dim].
LayerKV = tuple[torch.Tensor, torch.Tensor]


@dataclass
class Manifest:
    transfer_id: str
    producer_epoch: str
    num_tokens: int
    num_layers: int
    num_kv_heads: int
    head_dim: int
    dtype: str
    block_size: int  # the producer's: checksums cover its blocks
    prompt_hash: int  # of the prompt's token ids: the consumer checks it computes the same prompt
    prefill_s: float  # the producer's prefill time, for the transfer / prefill share
    checksums: list[int] = field(default_factory=list)  # per producer block, all layers; [] if off

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        return cls(**json.loads(text))


def prompt_hash(token_ids: list[int]) -> int:
    return zlib.crc32(torch.tensor(token_ids, dtype=torch.int64).numpy().tobytes())


def slots_of(block_table: list[int], block_size: int, start: int, end: int) -> torch.Tensor:
    """Flat cache slots of token positions [start, end) of a sequence."""
    positions = torch.arange(start, end, dtype=torch.int64)
    blocks = torch.tensor(block_table, dtype=torch.int64)[positions // block_size]
    return blocks * block_size + positions % block_size


def gather_layer(k_cache: torch.Tensor, v_cache: torch.Tensor, slots: torch.Tensor) -> LayerKV:
    """Copy the KV at `slots` out of a paged layer cache [blocks, block_size, heads, dim]."""
    heads, dim = k_cache.shape[-2:]
    index = slots.to(k_cache.device)
    k = k_cache.view(-1, heads, dim).index_select(0, index)
    v = v_cache.view(-1, heads, dim).index_select(0, index)
    return k.cpu(), v.cpu()


def scatter_layer(k_cache: torch.Tensor, v_cache: torch.Tensor, slots: torch.Tensor, kv: LayerKV) -> None:
    """Write token-major KV into a paged layer cache at `slots` (any block size)."""
    heads, dim = k_cache.shape[-2:]
    index = slots.to(k_cache.device)
    k_cache.view(-1, heads, dim).index_copy_(0, index, kv[0].to(k_cache.device, k_cache.dtype))
    v_cache.view(-1, heads, dim).index_copy_(0, index, kv[1].to(v_cache.device, v_cache.dtype))


def block_checksums(layers: list[LayerKV], block_size: int) -> list[int]:
    """crc32 of each block's tokens over every layer's K and V."""
    num_tokens = layers[0][0].shape[0]
    sums = []
    for start in range(0, num_tokens, block_size):
        crc = 0
        for k, v in layers:
            crc = zlib.crc32(as_bytes(k[start : start + block_size]), crc)
            crc = zlib.crc32(as_bytes(v[start : start + block_size]), crc)
        sums.append(crc)
    return sums


def as_bytes(tensor: torch.Tensor) -> bytes:
    """The raw bytes of a CPU tensor of any dtype (bfloat16 has no numpy type)."""
    return tensor.contiguous().view(torch.uint8).numpy().tobytes()
