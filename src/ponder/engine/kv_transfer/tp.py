"""Tensor-parallel hand-off: the wire format always carries every KV head, so prefill and decode
may use different TP sizes. A sending engine's ranks gather their head shards (all_gather over
the TP group's gloo group, every rank in the same order after the forward); a receiving
engine's ranks each keep the heads they hold (rank 0 in the coordinator, the others when the
next step message reaches them)."""

from __future__ import annotations

import torch
import torch.distributed as dist

from ponder.distributed.parallel_state import tensor_parallel_state
from ponder.distributed.sharding import kv_head_shard
from ponder.engine.kv_transfer.payload import LayerKV, gather_layer, scatter_layer

# One load for the other ranks: (cache slots, full-head KV per layer for those slots).
RankLoad = tuple[torch.Tensor, list[LayerKV]]


def gather_all_heads(
    kv_caches: list[tuple[torch.Tensor, torch.Tensor]], slots: torch.Tensor, total_heads: int, tp_size: int
) -> list[LayerKV]:
    """Every layer's K/V at `slots` with all heads; a collective under TP (every rank calls it).
    `tp_size` is the calling engine's own: a TP=1 engine beside a TP group gathers nothing."""
    layers = [gather_layer(k, v, slots) for k, v in kv_caches]
    if tp_size == 1:
        return layers
    state = tensor_parallel_state()
    assert state is not None and state.size == tp_size
    full: list[LayerKV] = []
    for k, v in layers:
        mine = torch.stack([k, v]).contiguous()
        shards = [torch.empty_like(mine) for _ in range(state.size)]
        dist.all_gather(shards, mine, group=state.host_group)
        # With fewer KV heads than ranks a head is replicated: keep one copy of each.
        starts: dict[int, torch.Tensor] = {}
        for rank, shard in enumerate(shards):
            starts.setdefault(kv_head_shard(total_heads, rank, state.size).start, shard)
        joined = torch.cat([starts[start] for start in sorted(starts)], dim=2)
        full.append((joined[0], joined[1]))
    return full


def heads_of_rank(kv: LayerKV, total_heads: int, tp_rank: int, tp_size: int) -> LayerKV:
    shard = kv_head_shard(total_heads, tp_rank, tp_size)
    return kv[0].narrow(1, shard.start, shard.count), kv[1].narrow(1, shard.start, shard.count)


def apply_rank_loads(
    kv_caches: list[tuple[torch.Tensor, torch.Tensor]],
    loads: list[RankLoad],
    total_heads: int,
    tp_rank: int,
    tp_size: int,
) -> None:
    """A worker rank writes its heads of each load into its own cache."""
    for slots, layers in loads:
        for (k_cache, v_cache), kv in zip(kv_caches, layers):
            scatter_layer(k_cache, v_cache, slots, heads_of_rank(kv, total_heads, tp_rank, tp_size))
