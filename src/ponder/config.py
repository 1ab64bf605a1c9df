"""Frozen engine configuration: what the user asked for, validated; derived values as properties."""

from __future__ import annotations

from dataclasses import dataclass, field

from ponder.errors import InvalidRequestError, TensorParallelError

DEFAULT_CPU_KV_CACHE_MEMORY = 1 << 30  # 1 GiB: plenty of tokens for small models on a laptop


@dataclass(frozen=True)
class CacheConfig:
    block_size: int = 16
    enable_prefix_caching: bool = True
    kv_cache_memory: int | None = None  # bytes for the KV pool; None: CPU default or GPU fraction
    gpu_memory_utilization: float = 0.9
    num_kv_blocks: int | None = None  # exact pool size; overrides the memory-based sizing

    def __post_init__(self) -> None:
        _require(
            self.block_size in (1, 2, 4, 8, 16, 32, 64, 128),
            "block_size",
            f"block_size must be a power of two in [1, 128], got {self.block_size}",
        )
        _require(
            self.kv_cache_memory is None or self.kv_cache_memory > 0,
            "kv_cache_memory",
            f"kv_cache_memory must be a positive number of bytes, got {self.kv_cache_memory}",
        )
        _require(
            0 < self.gpu_memory_utilization <= 1,
            "gpu_memory_utilization",
            f"gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization}",
        )
        _require(
            self.num_kv_blocks is None or self.num_kv_blocks >= 1,
            "num_kv_blocks",
            f"num_kv_blocks must be >= 1, got {self.num_kv_blocks}",
        )


@dataclass(frozen=True)
class SchedulerConfig:
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 2048
    policy: str = "fcfs"  # "fcfs" | "priority" (lower value first, then arrival)
    # Launch step N+1 before step N's tokens reach the host. None: on with CUDA, off on CPU.
    async_scheduling: bool | None = None
    # On CUDA, a step of fewer sequences is finished at once (synchronously). Measured on an H100
    # (BENCHMARKS.md): one sequence decoding at 32k context ran at 31% of the HBM roofline with
    # the step kept in flight against 73% without, as cudaGraphLaunch blocked for milliseconds;
    # at 4 and 128 sequences keeping it in flight wins. 2-3 sequences are not measured yet.
    async_min_batch_size: int = 4

    def __post_init__(self) -> None:
        _require(
            self.async_min_batch_size >= 1,
            "async_min_batch_size",
            f"async_min_batch_size must be >= 1, got {self.async_min_batch_size}",
        )
        _require(
            self.max_num_seqs >= 1,
            "max_num_seqs",
            f"max_num_seqs must be >= 1, got {self.max_num_seqs}",
        )
        _require(
            self.max_num_batched_tokens >= 1,
            "max_num_batched_tokens",
            f"max_num_batched_tokens must be >= 1, got {self.max_num_batched_tokens}",
        )
        _require(
            self.policy in ("fcfs", "priority"),
            "scheduling_policy",
            f"scheduling_policy must be 'fcfs' or 'priority', got {self.policy!r}",
        )


@dataclass(frozen=True)
class ModelConfig:
    model: str
    dtype: str = "auto"
    max_model_len: int | None = None  # None: the checkpoint's max_position_embeddings
    seed: int = 0
    device: str | None = None  # None: cuda if available, else cpu
    enforce_eager: bool = False  # no CUDA graphs


@dataclass(frozen=True)
class ParallelConfig:
    tensor_parallel_size: int = 1  # ranks the model is split over, one process each

    def __post_init__(self) -> None:
        size = self.tensor_parallel_size
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise TensorParallelError(f"tensor_parallel_size must be an integer >= 1, got {size!r}")


KV_CONNECTORS = ("none", "shm", "torch")
KV_LOAD_FAILURE_POLICIES = ("recompute", "fail")


@dataclass(frozen=True)
class KVTransferConfig:
    """Disaggregated prefill/decode: how this engine hands prompt KV to (or takes it from) another
    engine (docs/disaggregated.md). connector "none": colocated, no transfer."""

    connector: str = "none"  # "shm": files in /dev/shm; "torch": torch.distributed (gloo / NCCL)
    timeout_s: float = 10.0  # a load not complete by then fails (then failure_policy applies)
    failure_policy: str = "recompute"  # "recompute": the decode side prefills itself; "fail"
    checksum: bool = False  # test/debug: checksum every block on save, verify it on load
    worker_name: str | None = None  # keys this worker's transfer files (default: pid)
    shm_dir: str | None = None  # default /dev/shm/ponder-kv-<uid> (or the temp dir)
    port: int | None = None  # torch connector: the TCPStore this worker hosts (default: free)
    debug_save_delay_s: float = 0.0  # test only: pause mid-save (to kill a worker mid-transfer)

    @property
    def enabled(self) -> bool:
        return self.connector != "none"

    def __post_init__(self) -> None:
        _require(
            self.connector in KV_CONNECTORS,
            "kv_connector",
            f"kv_connector must be one of {', '.join(KV_CONNECTORS)}, got {self.connector!r}",
        )
        _require(
            self.failure_policy in KV_LOAD_FAILURE_POLICIES,
            "kv_load_failure_policy",
            f"kv_load_failure_policy must be 'recompute' or 'fail', got {self.failure_policy!r}",
        )
        _require(
            self.timeout_s > 0,
            "kv_transfer_timeout",
            f"kv_transfer_timeout must be > 0 seconds, got {self.timeout_s}",
        )
        _require(
            self.debug_save_delay_s >= 0,
            "kv_transfer_debug_delay",
            f"kv_transfer_debug_delay must be >= 0, got {self.debug_save_delay_s}",
        )


@dataclass(frozen=True)
class EngineConfig:
    model: ModelConfig
    cache: CacheConfig = field(default_factory=CacheConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)
    kv_transfer: KVTransferConfig = field(default_factory=KVTransferConfig)


def _require(ok: bool, param: str, message: str) -> None:
    if not ok:
        raise InvalidRequestError(message, param=param)
