"""TensorParallelRunner: rank 0's model runner under tensor parallelism. It spawns one worker
process per other rank, sends each step's host inputs to them, and runs its own slice of the
same forward; the collectives inside the model tie the ranks together."""

from __future__ import annotations

import logging
import multiprocessing
import shutil
import tempfile
import weakref
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

import torch

from ponder.config import EngineConfig
from ponder.distributed.parallel_state import (
    broadcast_tensor,
    destroy_tensor_parallel,
    init_tensor_parallel,
    tensor_parallel_state,
)
from ponder.distributed.sharding import check_tensor_parallel
from ponder.engine.model_runner import ModelRunner, ModelStepOutput, PendingInputs
from ponder.engine.rank_setup import PendingMeta, RankRunner, StepMessage, build_rank_runner
from ponder.engine.scheduler import ScheduledBatch
from ponder.engine.tp_worker import FAILED, READY, WorkerSpec, worker_main
from ponder.errors import TensorParallelError, TensorParallelWorkerError
from ponder.models.hf_config import ArchConfig

logger = logging.getLogger("ponder.engine")

COLLECTIVE_TIMEOUT_S = 300.0  # a step's collective waiting longer than this means a rank is stuck
JOIN_TIMEOUT_S = 10.0


def create_model_runner(
    config: EngineConfig, arch: ArchConfig, dtype: torch.dtype, device: torch.device, max_model_len: int
) -> RankRunner:
    """Rank 0's runner: a plain ModelRunner, or with tensor_parallel_size > 1 one that drives
    its worker processes (started here; they load their slices while rank 0 loads its own)."""
    tp_size = config.parallel.tensor_parallel_size
    check_tensor_parallel(
        tp_size,
        num_heads=arch.num_attention_heads,
        num_kv_heads=arch.num_key_value_heads,
        intermediate_size=arch.intermediate_size,
    )
    if tp_size == 1:
        return build_rank_runner(config, arch, dtype, device, max_model_len, 0, 1)
    if tensor_parallel_state() is not None:
        raise TensorParallelError(
            "this process already runs a tensor-parallel engine; shut it down first "
            "(engine.shutdown()) — one process hosts one tensor-parallel group"
        )
    if device.type == "cuda" and torch.cuda.device_count() < tp_size:
        raise TensorParallelError(
            f"tensor_parallel_size {tp_size} needs {tp_size} GPUs, {torch.cuda.device_count()} visible"
        )
    workers = _Workers(config, arch, dtype, device, max_model_len, tp_size)
    try:
        backend = "nccl" if device.type == "cuda" else "gloo"
        init_tensor_parallel(0, tp_size, workers.init_method, backend, COLLECTIVE_TIMEOUT_S)
        rank = build_rank_runner(config, arch, dtype, device, max_model_len, 0, tp_size)
        workers.wait_ready()
    except BaseException as error:
        failure = workers.failure()
        workers.stop()
        destroy_tensor_parallel()
        if failure is not None:
            raise TensorParallelWorkerError(
                f"a tensor-parallel worker failed to start:\n{failure}"
            ) from error
        raise
    runner = TensorParallelRunner(rank.runner, workers)
    logger.info("tensor parallel: %d ranks (%s), rank 0 in this process", tp_size, backend)
    return RankRunner(runner, rank.layout, rank.num_blocks)


class TensorParallelRunner(ModelRunner):
    """A ModelRunner whose every step also runs on the worker ranks."""

    def __init__(self, runner: ModelRunner, workers: _Workers) -> None:  # noqa: D107
        # Takes over rank 0's built runner (its KV pool, graphs) rather than building it again:
        # building runs collectives that the workers already took part in.
        self.__dict__.update(runner.__dict__)
        self._workers = workers
        self._finalizer = weakref.finalize(self, _shutdown, workers)

    def execute(self, batch: ScheduledBatch, pending: PendingInputs | None = None) -> ModelStepOutput:
        self._workers.check_alive()
        host = self.host_inputs(batch)
        meta = None
        if pending is not None:
            meta = PendingMeta(len(pending.sampled_token_ids), pending.batch_indices, pending.source_rows)
        try:
            self._workers.send(
                StepMessage(host, list(batch.block_copies), meta, batch.kv_loads, batch.kv_save_slots)
            )
            if pending is not None:
                # Tokens sampled by the last step exist only on rank 0's device: share them there.
                broadcast_tensor(pending.sampled_token_ids.contiguous(), src=0)
            return self.execute_inputs(host, batch.block_copies, pending)
        except (RuntimeError, OSError) as error:
            self._workers.check_alive()
            raise TensorParallelWorkerError(f"a tensor-parallel collective failed: {error}") from error

    def shutdown(self) -> None:
        self._finalizer()


def _shutdown(workers: _Workers) -> None:
    workers.stop()
    destroy_tensor_parallel()


class _Workers:
    """The worker processes of ranks 1..N-1 and rank 0's pipe to each."""

    def __init__(
        self,
        config: EngineConfig,
        arch: ArchConfig,
        dtype: torch.dtype,
        device: torch.device,
        max_model_len: int,
        tp_size: int,
    ) -> None:
        # A file rendezvous: no port to pick, so engines started side by side never collide.
        self._store_dir = Path(tempfile.mkdtemp(prefix="ponder-tp-"))
        self.init_method = f"file://{self._store_dir / 'rendezvous'}"
        spec = WorkerSpec(
            config, arch, dtype, device.type, max_model_len, tp_size, self.init_method, COLLECTIVE_TIMEOUT_S
        )
        context = multiprocessing.get_context("spawn")  # CUDA and threads forbid fork
        self.processes: list[BaseProcess] = []
        self.conns: list[Connection] = []
        self._failure: str | None = None
        for tp_rank in range(1, tp_size):
            ours, theirs = context.Pipe()
            process = context.Process(
                target=worker_main, args=(theirs, spec, tp_rank), name=f"ponder-tp-{tp_rank}", daemon=True
            )
            process.start()
            theirs.close()
            self.processes.append(process)
            self.conns.append(ours)

    def wait_ready(self) -> None:
        for tp_rank, conn in enumerate(self.conns, start=1):
            try:
                status, detail = conn.recv()
            except EOFError:
                raise TensorParallelWorkerError(
                    f"tensor-parallel rank {tp_rank} exited while starting"
                ) from None
            if status != READY:
                self._failure = str(detail)
                raise TensorParallelWorkerError(f"tensor-parallel rank {tp_rank} failed to start:\n{detail}")

    def failure(self) -> str | None:
        """The first traceback a worker reported while starting, if any."""
        if self._failure is None:
            for conn in self.conns:
                if conn.poll(0.5):
                    try:
                        status, detail = conn.recv()
                    except (EOFError, OSError):
                        continue
                    if status == FAILED:
                        self._failure = str(detail)
                        break
        return self._failure

    def check_alive(self) -> None:
        for tp_rank, process in enumerate(self.processes, start=1):
            if not process.is_alive():
                raise TensorParallelWorkerError(
                    f"tensor-parallel rank {tp_rank} (pid {process.pid}) died with exit code "
                    f"{process.exitcode}; the engine cannot go on, restart it"
                )

    def send(self, message: StepMessage | None) -> None:
        for conn in self.conns:
            conn.send(message)

    def stop(self) -> None:
        for conn in self.conns:
            try:
                conn.send(None)
            except (OSError, ValueError):
                pass  # already gone
        for process in self.processes:
            process.join(JOIN_TIMEOUT_S)
            if process.is_alive():
                process.kill()
                process.join(JOIN_TIMEOUT_S)
        for conn in self.conns:
            conn.close()
        self.processes, self.conns = [], []
        shutil.rmtree(self._store_dir, ignore_errors=True)
