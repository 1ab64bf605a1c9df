"""Tensor-parallel linear layers whose parameters load their own shard of a checkpoint tensor.

Each Parameter carries `weight_loader(param, loaded_weight, shard_id=None)`: loading a full
checkpoint tensor and tensor-parallel sharding are one mechanism (the nano-vllm way).
"""

from __future__ import annotations

import torch
from torch import nn

from ponder.distributed.parallel_state import all_reduce
from ponder.distributed.sharding import Weight, divide, kv_head_shard, materialize
from ponder.kernels.cpu_linear import linear
from ponder.layers.weight_loader import check_shape


def _with_dim(param: torch.Tensor, dim: int, size: int) -> tuple[int, ...]:
    """The full (unsharded) checkpoint shape: param's shape with `dim` widened to `size`."""
    shape = list(param.shape)
    shape[dim] = size
    return tuple(shape)


class LinearBase(nn.Module):
    """y = x W^T (+ b) with W [output_size, input_size] as stored by this rank."""

    def __init__(self, input_size: int, output_size: int, bias: bool, tp_rank: int, tp_size: int) -> None:
        super().__init__()
        self.tp_rank, self.tp_size = tp_rank, tp_size
        self.weight = nn.Parameter(torch.empty(output_size, input_size), requires_grad=False)
        self.weight.weight_loader = self.weight_loader
        if bias:
            self.bias = nn.Parameter(torch.empty(output_size), requires_grad=False)
            self.bias.weight_loader = self.weight_loader
        else:
            self.register_parameter("bias", None)

    def weight_loader(self, param: nn.Parameter, loaded_weight: Weight, shard_id: object = None) -> None:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)


class ColumnParallelLinear(LinearBase):
    """Output features split across ranks; each rank's output is its slice (no communication)."""

    def __init__(
        self,
        input_size: int,
        output_size: int,
        bias: bool = False,
        tp_rank: int = 0,
        tp_size: int = 1,
    ) -> None:
        super().__init__(input_size, divide(output_size, tp_size, "output size"), bias, tp_rank, tp_size)

    def weight_loader(self, param: nn.Parameter, loaded_weight: Weight, shard_id: object = None) -> None:
        rows = param.shape[0]
        check_shape(_with_dim(param, 0, rows * self.tp_size), loaded_weight, "column-parallel linear")
        param.data.copy_(loaded_weight.narrow(0, self.tp_rank * rows, rows))


class MergedColumnParallelLinear(ColumnParallelLinear):
    """Several column-parallel matrices stacked (e.g. gate and up); shard_id is the index."""

    def __init__(
        self,
        input_size: int,
        output_sizes: list[int],
        bias: bool = False,
        tp_rank: int = 0,
        tp_size: int = 1,
    ) -> None:
        self.output_sizes = list(output_sizes)
        super().__init__(input_size, sum(output_sizes), bias, tp_rank, tp_size)

    def weight_loader(self, param: nn.Parameter, loaded_weight: Weight, shard_id: object = None) -> None:
        if not isinstance(shard_id, int) or not 0 <= shard_id < len(self.output_sizes):
            raise ValueError(f"merged linear shard_id must be 0..{len(self.output_sizes) - 1}")
        full_rows = self.output_sizes[shard_id]
        check_shape(_with_dim(param, 0, full_rows), loaded_weight, f"merged linear part {shard_id}")
        rows, offset = full_rows // self.tp_size, sum(self.output_sizes[:shard_id]) // self.tp_size
        shard = loaded_weight.narrow(0, self.tp_rank * rows, rows)
        param.data.narrow(0, offset, rows).copy_(shard)


class QKVParallelLinear(ColumnParallelLinear):
    """Fused q/k/v projection; query heads split across ranks, KV heads split or replicated.

    Per-rank output layout: [q heads of this rank | k heads | v heads], each head head_dim wide.
    shard_id is "q", "k" or "v".
    """

    def __init__(
        self,
        hidden_size: int,
        head_dim: int,
        num_heads: int,
        num_kv_heads: int,
        bias: bool = False,
        tp_rank: int = 0,
        tp_size: int = 1,
    ) -> None:
        self.head_dim, self.total_num_heads, self.total_num_kv_heads = (
            head_dim,
            num_heads,
            num_kv_heads,
        )
        self.num_heads = divide(num_heads, tp_size, "number of attention heads")
        # Fewer KV heads than ranks: each KV head is replicated on tp_size / num_kv_heads ranks.
        kv_shard = kv_head_shard(num_kv_heads, tp_rank, tp_size)
        self.num_kv_heads, self.kv_head_start = kv_shard.count, kv_shard.start
        output_size = (self.num_heads + 2 * self.num_kv_heads) * head_dim * tp_size
        super().__init__(hidden_size, output_size, bias, tp_rank, tp_size)

    def weight_loader(self, param: nn.Parameter, loaded_weight: Weight, shard_id: object = None) -> None:
        q_size, kv_size = self.num_heads * self.head_dim, self.num_kv_heads * self.head_dim
        kv_start = self.kv_head_start * self.head_dim
        if shard_id == "q":
            offset, size, start, total_heads = (
                0,
                q_size,
                self.tp_rank * q_size,
                self.total_num_heads,
            )
        elif shard_id in ("k", "v"):
            offset = q_size if shard_id == "k" else q_size + kv_size
            size, start, total_heads = kv_size, kv_start, self.total_num_kv_heads
        else:
            raise ValueError(f"QKV shard_id must be 'q', 'k' or 'v', got {shard_id!r}")
        full_shape = _with_dim(param, 0, total_heads * self.head_dim)
        check_shape(full_shape, loaded_weight, f"{shard_id} projection")
        param.data.narrow(0, offset, size).copy_(loaded_weight.narrow(0, start, size))


class RowParallelLinear(LinearBase):
    """Input features split across ranks; partial outputs are summed with an all-reduce."""

    def __init__(
        self,
        input_size: int,
        output_size: int,
        bias: bool = False,
        tp_rank: int = 0,
        tp_size: int = 1,
    ) -> None:
        super().__init__(divide(input_size, tp_size, "input size"), output_size, bias, tp_rank, tp_size)

    def weight_loader(self, param: nn.Parameter, loaded_weight: Weight, shard_id: object = None) -> None:
        if param.dim() == 1:  # bias: whole on every rank, added once after the reduce
            check_shape(param.shape, loaded_weight, "row-parallel linear bias")
            param.data.copy_(materialize(loaded_weight))
            return
        cols = param.shape[1]
        check_shape(_with_dim(param, 1, cols * self.tp_size), loaded_weight, "row-parallel linear")
        param.data.copy_(loaded_weight.narrow(1, self.tp_rank * cols, cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Only rank 0 adds the bias, so the all-reduce sums it exactly once.
        bias = self.bias if self.tp_rank == 0 else None
        y = linear(x, self.weight, bias)
        if self.tp_size > 1:
            all_reduce(y)  # the one collective of a row-parallel layer
        return y
