"""What every tensor-parallel rank builds the same way: its model slice, KV pool and runner,
and the message rank 0 sends each step so the other ranks run the same forward."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ponder.config import EngineConfig
from ponder.distributed.parallel_state import min_over_ranks
from ponder.engine.kv.layout import KVLayout
from ponder.engine.kv_sizing import num_kv_blocks
from ponder.engine.model_runner import HostInputs, ModelRunner
from ponder.models.hf_config import ArchConfig
from ponder.models.loader import kv_heads_per_rank, load_model


@dataclass
class RankRunner:
    runner: ModelRunner
    layout: KVLayout  # this rank's pool: the sharded KV head count
    num_blocks: int  # the same on every rank: the least any rank fits


def kv_layout_for(arch: ArchConfig, block_size: int, dtype: torch.dtype, tp_size: int) -> KVLayout:
    """Sized from the heads this rank holds, not the checkpoint's total (else TP-times too small)."""
    return KVLayout(
        num_layers=arch.num_hidden_layers,
        num_kv_heads=kv_heads_per_rank(arch, tp_size),
        head_dim=arch.head_dim,
        block_size=block_size,
        dtype=dtype,
    )


def build_rank_runner(
    config: EngineConfig,
    arch: ArchConfig,
    dtype: torch.dtype,
    device: torch.device,
    max_model_len: int,
    tp_rank: int,
    tp_size: int,
) -> RankRunner:
    """Load this rank's slice of the checkpoint and allocate its KV pool. Under TP every rank
    calls this in lockstep: GPU pool profiling and CUDA graph capture run collectives."""
    model = load_model(config.model.model, arch, dtype, device, tp_rank=tp_rank, tp_size=tp_size)
    layout = kv_layout_for(arch, config.cache.block_size, dtype, tp_size)
    num_blocks = min_over_ranks(num_kv_blocks(config, layout, arch, device, max_model_len, model))
    spec = config.speculative
    verify_tokens = 1 + spec.num_speculative_tokens if spec is not None else 1
    runner = ModelRunner(model, layout, num_blocks, config, device, max_model_len, verify_tokens)
    return RankRunner(runner, layout, num_blocks)


@dataclass(frozen=True)
class PendingMeta:
    """PendingInputs without the device tensor, which follows as a broadcast of num_rows."""

    num_rows: int
    batch_indices: np.ndarray
    source_rows: np.ndarray


@dataclass(frozen=True)
class StepMessage:
    """One step for the worker ranks: the host inputs rank 0 scheduled."""

    host: HostInputs
    block_copies: list[tuple[int, int]]
    pending: PendingMeta | None
    kv_loads: list[Any] = field(default_factory=list)  # ScheduledBatch.kv_loads
    kv_save_slots: list[Any] = field(default_factory=list)  # ScheduledBatch.kv_save_slots
