"""The tensor-parallel group of this process: rank, size, and the collectives the layers use.

One group per process (torch.distributed's default group): a process runs at most one
tensor-parallel engine. Tensors go over the model's backend (NCCL on GPU, gloo on CPU); the
step's host inputs go over a gloo group, so broadcasting them never touches the GPU stream."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class TensorParallelState:
    rank: int
    size: int
    backend: str
    host_group: Any  # gloo ProcessGroup for pickled host data


_state: TensorParallelState | None = None


def init_tensor_parallel(
    rank: int, size: int, init_method: str, backend: str, timeout_s: float = 600.0
) -> TensorParallelState:
    global _state
    if _state is not None:
        raise RuntimeError("this process already belongs to a tensor-parallel group")
    timeout = timedelta(seconds=timeout_s)
    dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=size, timeout=timeout)
    host_group = dist.new_group(backend="gloo", timeout=timeout) if backend != "gloo" else dist.group.WORLD
    _state = TensorParallelState(rank, size, backend, host_group)
    return _state


def destroy_tensor_parallel() -> None:
    global _state
    if _state is None:
        return
    _state = None
    if dist.is_initialized():
        dist.destroy_process_group()


def tensor_parallel_state() -> TensorParallelState | None:
    return _state


def all_reduce(tensor: torch.Tensor) -> torch.Tensor:
    """Sum `tensor` over the ranks, in place."""
    dist.all_reduce(tensor)
    return tensor


def all_gather(tensor: torch.Tensor, tp_size: int) -> torch.Tensor:
    """Concatenate every rank's `tensor` along the last dimension (rank order)."""
    shards = [torch.empty_like(tensor) for _ in range(tp_size)]
    dist.all_gather(shards, tensor.contiguous())
    return torch.cat(shards, dim=-1)


def broadcast_tensor(tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
    dist.broadcast(tensor, src=src)
    return tensor


def broadcast_object(value: Any, src: int = 0) -> Any:
    """Rank `src` sends `value` (pickled, over the gloo group); every rank returns it."""
    state = _state
    if state is None:
        raise RuntimeError("broadcast_object outside a tensor-parallel group")
    box = [value]
    dist.broadcast_object_list(box, src=src, group=state.host_group)
    return box[0]


def min_over_ranks(value: int) -> int:
    """The smallest `value` any rank holds (e.g. KV blocks that fit on every rank)."""
    state = _state
    if state is None:
        return value
    box = torch.tensor([value], dtype=torch.int64)
    dist.all_reduce(box, op=dist.ReduceOp.MIN, group=state.host_group)
    return int(box.item())
