"""A tensor-parallel worker process (ranks 1..N-1): builds its rank, then runs every step rank 0
sends it until told to stop or rank 0 goes away."""

from __future__ import annotations

import logging
import os
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection

import torch

from ponder.config import EngineConfig
from ponder.distributed.parallel_state import (
    broadcast_tensor,
    destroy_tensor_parallel,
    init_tensor_parallel,
)
from ponder.engine.kv_transfer.tp import apply_rank_loads, gather_all_heads
from ponder.engine.model_runner import ModelRunner, PendingInputs
from ponder.engine.rank_setup import StepMessage, build_rank_runner
from ponder.models.hf_config import ArchConfig

logger = logging.getLogger("ponder.engine")

READY = "ready"
FAILED = "failed"


@dataclass(frozen=True)
class WorkerSpec:
    """What rank 0 resolved once and every worker must use as is."""

    config: EngineConfig
    arch: ArchConfig
    dtype: torch.dtype
    device_type: str
    max_model_len: int
    tp_size: int
    init_method: str
    timeout_s: float


def worker_main(conn: Connection, spec: WorkerSpec, tp_rank: int) -> None:
    """Entry point of a spawned worker. Reports READY (or FAILED with the traceback) on `conn`."""
    try:
        tp_size, arch, dtype, config = spec.tp_size, spec.arch, spec.dtype, spec.config
        device = _rank_device(spec.device_type, tp_rank, tp_size)
        backend = "nccl" if device.type == "cuda" else "gloo"
        init_tensor_parallel(tp_rank, tp_size, spec.init_method, backend, spec.timeout_s)
        max_model_len = spec.max_model_len
        torch.manual_seed(config.model.seed)
        rank = build_rank_runner(config, arch, dtype, device, max_model_len, tp_rank, tp_size)
        conn.send((READY, rank.num_blocks))
    except BaseException:
        conn.send((FAILED, traceback.format_exc()))
        raise
    try:
        _serve_steps(conn, rank.runner, device, arch.num_key_value_heads, tp_rank, tp_size)
    finally:
        destroy_tensor_parallel()


def _serve_steps(
    conn: Connection, runner: ModelRunner, device: torch.device, kv_heads: int, tp_rank: int, tp_size: int
) -> None:
    while True:
        try:
            message: StepMessage | None = conn.recv()
        except EOFError:  # rank 0 is gone
            return
        if message is None:
            return
        pending = None
        if message.pending is not None:
            meta = message.pending
            tokens = torch.empty(meta.num_rows, dtype=torch.int64, device=device)
            broadcast_tensor(tokens, src=0)
            pending = PendingInputs(tokens, meta.batch_indices, meta.source_rows)
        if message.kv_loads:  # disaggregated: this rank's heads of KV loaded by rank 0
            apply_rank_loads(runner.kv_caches, message.kv_loads, kv_heads, tp_rank, tp_size)
        runner.execute_inputs(message.host, message.block_copies, pending)
        for slots in message.kv_save_slots:  # the same gathers rank 0 runs after the forward
            gather_all_heads(runner.kv_caches, slots, kv_heads, tp_size)


def _rank_device(device_type: str, tp_rank: int, tp_size: int) -> torch.device:
    if device_type == "cuda":
        torch.cuda.set_device(tp_rank)
        return torch.device("cuda", tp_rank)
    # Ranks share the host's cores: one rank's threads must not starve another's.
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // tp_size))
    return torch.device("cpu")
