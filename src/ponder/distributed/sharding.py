"""Which slice of a checkpoint tensor a tensor-parallel rank owns, and whether a model splits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch

from ponder.errors import TensorParallelError


def divide(numerator: int, denominator: int, what: str) -> int:
    if numerator % denominator != 0:
        raise TensorParallelError(
            f"{what} ({numerator}) is not divisible by tensor parallel size {denominator}"
        )
    return numerator // denominator


@dataclass(frozen=True)
class KVHeadShard:
    """The KV heads one rank holds: `count` heads from `start` (count 1 when replicated)."""

    start: int
    count: int


def kv_head_shard(num_kv_heads: int, tp_rank: int, tp_size: int) -> KVHeadShard:
    """KV heads split evenly, or, with fewer KV heads than ranks, each head replicated on
    tp_size / num_kv_heads neighbouring ranks: a head is never split across ranks."""
    if num_kv_heads >= tp_size:
        count = divide(num_kv_heads, tp_size, "number of KV heads")
        return KVHeadShard(tp_rank * count, count)
    if tp_size % num_kv_heads != 0:
        raise TensorParallelError(
            f"tensor parallel size {tp_size} is not a multiple of the number of KV heads "
            f"({num_kv_heads}); with fewer KV heads than ranks each head is replicated on "
            f"an equal number of ranks"
        )
    return KVHeadShard(tp_rank // (tp_size // num_kv_heads), 1)


def num_kv_heads_per_rank(num_kv_heads: int, tp_size: int) -> int:
    return kv_head_shard(num_kv_heads, 0, tp_size).count


@dataclass(frozen=True)
class VocabShard:
    """Rows [start, end) of the vocabulary; every rank stores rows_per_rank (the last is padded)."""

    start: int
    end: int
    rows_per_rank: int


def vocab_shard(vocab_size: int, tp_rank: int, tp_size: int) -> VocabShard:
    rows = -(-vocab_size // tp_size)
    start = min(tp_rank * rows, vocab_size)
    return VocabShard(start, min(start + rows, vocab_size), rows)


def check_tensor_parallel(tp_size: int, *, num_heads: int, num_kv_heads: int, intermediate_size: int) -> None:
    """Raise TensorParallelError unless a model of these sizes splits over tp_size ranks."""
    if not isinstance(tp_size, int) or isinstance(tp_size, bool) or tp_size < 1:
        raise TensorParallelError(f"tensor_parallel_size must be an integer >= 1, got {tp_size!r}")
    divide(num_heads, tp_size, "number of attention heads")
    kv_head_shard(num_kv_heads, 0, tp_size)
    divide(intermediate_size, tp_size, "MLP intermediate size")


class _SafeSlice(Protocol):
    def get_shape(self) -> list[int]: ...

    def __getitem__(self, index: Any) -> torch.Tensor: ...


class LazyWeight:
    """A checkpoint tensor not read yet: `narrow` reads only the asked rows or columns from the
    safetensors file, so a rank never materialises the parts other ranks own."""

    def __init__(self, source: _SafeSlice) -> None:
        self._source = source
        self.shape = torch.Size(source.get_shape())

    def dim(self) -> int:
        return len(self.shape)

    def narrow(self, dim: int, start: int, length: int) -> torch.Tensor:
        index = [slice(None)] * dim + [slice(start, start + length)]
        return self._source[tuple(index)]

    def full(self) -> torch.Tensor:
        return self._source[tuple(slice(None) for _ in self.shape)] if self.shape else self._source[()]


Weight = torch.Tensor | LazyWeight


def materialize(weight: Weight) -> torch.Tensor:
    """The whole tensor, for parameters every rank holds in full (norms, biases of row layers)."""
    return weight.full() if isinstance(weight, LazyWeight) else weight
