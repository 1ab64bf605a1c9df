"""Frozen engine configuration: what the user asked for, validated; derived values as properties."""

from __future__ import annotations

from dataclasses import dataclass, field

from ponder.errors import InvalidRequestError, SpeculativeConfigError, TensorParallelError

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


SPECULATIVE_METHODS = ("ngram", "draft")
BUILTIN_SMALL_DRAFT = "builtin-small"  # the built-in model cut to its first draft_layers layers


@dataclass(frozen=True)
class SpeculativeConfig:
    """Speculative decoding (engine/spec/): a proposer guesses up to num_speculative_tokens
    tokens per decoding sequence and the target verifies them in one forward."""

    method: str  # "ngram" (prompt lookup) | "draft" (a small model with its own KV cache)
    num_speculative_tokens: int = 4
    draft_model: str = BUILTIN_SMALL_DRAFT  # a HF checkpoint dir with the target's tokenizer
    draft_layers: int = 2  # layers the built-in small draft keeps
    ngram_min: int = 2
    ngram_max: int = 4
    # Above this many sequences in a step decoding is compute-bound: speculation only costs.
    disable_batch_size: int = 16
    # Prior cost of one extra verified token in decode steps, until measured (spec/cost.py).
    token_cost: float = 0.1
    # False: every decoding sequence proposes K tokens every step (no off-switch); for tests and
    # measurements of fixed-K speculation.
    adaptive: bool = True

    def __post_init__(self) -> None:
        checks = [
            (
                self.method in SPECULATIVE_METHODS,
                "speculative_method",
                f"speculative_method must be one of {', '.join(SPECULATIVE_METHODS)}, got {self.method!r}",
            ),
            (
                _is_int(self.num_speculative_tokens) and 1 <= self.num_speculative_tokens <= 16,
                "num_speculative_tokens",
                f"num_speculative_tokens must be an integer in [1, 16], got {self.num_speculative_tokens!r}",
            ),
            (
                _is_int(self.ngram_min) and _is_int(self.ngram_max) and 1 <= self.ngram_min <= self.ngram_max,
                "ngram_min",
                f"need 1 <= ngram_min <= ngram_max, got {self.ngram_min!r} and {self.ngram_max!r}",
            ),
            (
                _is_int(self.draft_layers) and self.draft_layers >= 1,
                "speculative_draft_layers",
                f"speculative_draft_layers must be an integer >= 1, got {self.draft_layers!r}",
            ),
            (
                _is_int(self.disable_batch_size) and self.disable_batch_size >= 1,
                "speculative_disable_batch_size",
                f"speculative_disable_batch_size must be >= 1, got {self.disable_batch_size!r}",
            ),
            (
                self.token_cost >= 0,
                "speculative_token_cost",
                f"speculative_token_cost must be >= 0, got {self.token_cost!r}",
            ),
        ]
        for ok, param, message in checks:
            if not ok:
                raise SpeculativeConfigError(message, param=param)


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
    speculative: SpeculativeConfig | None = None  # None: no speculative decoding
    kv_transfer: KVTransferConfig = field(default_factory=KVTransferConfig)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _require(ok: bool, param: str, message: str) -> None:
    if not ok:
        raise InvalidRequestError(message, param=param)
