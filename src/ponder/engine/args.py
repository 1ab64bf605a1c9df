"""EngineArgs: every engine knob once (name, default, help); it builds the EngineConfig and the
command-line flags of every `ponder` command that runs an engine."""

from __future__ import annotations

import argparse
import dataclasses
import re
import typing
from dataclasses import dataclass, field
from typing import Any

from ponder.assets import default_model_dir
from ponder.config import (
    BUILTIN_SMALL_DRAFT,
    SPECULATIVE_METHODS,
    CacheConfig,
    EngineConfig,
    KVTransferConfig,
    ModelConfig,
    ParallelConfig,
    SchedulerConfig,
    SpeculativeConfig,
)
from ponder.errors import InvalidRequestError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_UNITS |= {"ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}


def parse_size(text: str) -> int:
    """'2GiB', '512MB', '1048576' -> bytes."""
    match = _SIZE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (examples: 2GiB, 512MB, 1048576)")
    unit = (match.group(2) or "").lower().rstrip("b")
    return int(float(match.group(1)) * _UNITS[unit])


def _knob(default: Any, help: str, **cli: Any) -> Any:
    """A field with the help text and argparse extras (choices, type) of its flag."""
    return field(default=default, metadata={"help": help, **cli})


@dataclass(frozen=True)
class EngineArgs:
    """The engine's knobs, named as in vLLM. `model` None serves the built-in reasoning model."""

    model: str | None = None
    dtype: str = _knob(
        "auto",
        "weights and activations (auto: the checkpoint's, float32 on CPU)",
        choices=("auto", "float32", "bfloat16", "float16"),
    )
    max_model_len: int | None = _knob(None, "context length (default: the checkpoint's)")
    max_num_seqs: int = _knob(256, "sequences running at once")
    max_num_batched_tokens: int = _knob(2048, "tokens per engine step (the chunked-prefill budget)")
    block_size: int = _knob(16, "tokens per KV cache block")
    enable_prefix_caching: bool = _knob(True, "reuse the KV of shared prompt prefixes")
    kv_cache_memory: int | None = _knob(
        None, "bytes for the KV cache, e.g. 2GiB (default: 1GiB on CPU)", type=parse_size
    )
    gpu_memory_utilization: float = _knob(0.9, "share of GPU memory the engine may fill")
    num_kv_blocks: int | None = _knob(None, "exact KV pool size in blocks (overrides the sizing)")
    scheduling_policy: str = _knob("fcfs", "queue order", choices=("fcfs", "priority"))
    seed: int = _knob(0, "seed of the model's random init and of unseeded sampling")
    device: str | None = _knob(None, "cpu or cuda (default: cuda if available)")
    enforce_eager: bool = _knob(False, "no CUDA graphs (GPU)")
    async_scheduling: bool | None = _knob(
        None, "prepare step N+1 while the GPU runs step N (default: on with CUDA, off on CPU)"
    )
    async_min_batch_size: int = _knob(
        4, "on CUDA, steps of fewer sequences are finished synchronously (see SchedulerConfig)"
    )
    tensor_parallel_size: int = _knob(
        1, "split the model over N ranks, one process each (NCCL on GPUs, gloo on CPU)"
    )
    speculative_method: str | None = _knob(
        None,
        "speculative decoding: ngram (prompt lookup) or draft (a small model); default off",
        choices=SPECULATIVE_METHODS,
    )
    num_speculative_tokens: int = _knob(4, "tokens proposed per sequence and step (K)")
    speculative_model: str = _knob(
        BUILTIN_SMALL_DRAFT,
        "draft model dir with the target's tokenizer, or builtin-small (the built-in model cut "
        "to --speculative-draft-layers layers)",
    )
    speculative_draft_layers: int = _knob(2, "layers of the builtin-small draft")
    ngram_min: int = _knob(2, "shortest n-gram the prompt-lookup proposer matches")
    ngram_max: int = _knob(4, "longest n-gram the prompt-lookup proposer matches")
    speculative_disable_batch_size: int = _knob(
        16, "no speculation in steps of more sequences (decoding is compute-bound there)"
    )
    speculative_token_cost: float = _knob(
        0.1, "prior cost of one extra verified token in decode steps, until the engine has measured it"
    )
    speculative_adaptive: bool = _knob(
        True, "turn speculation off where it does not pay (off: always propose K tokens)"
    )
    kv_connector: str = _knob(
        "none",
        "disaggregated prefill/decode KV hand-off: shm (same host, /dev/shm) or torch "
        "(torch.distributed, gloo on CPU); none: colocated",
        choices=("none", "shm", "torch"),
    )
    kv_transfer_timeout: float = _knob(10.0, "seconds a KV load may take before it counts as failed")
    kv_load_failure_policy: str = _knob(
        "recompute",
        "a failed or missing KV load: recompute the prompt on the decode worker, or fail the request",
        choices=("recompute", "fail"),
    )
    kv_transfer_checksum: bool = _knob(False, "checksum every transferred KV block (test/debug)")
    kv_worker_name: str | None = _knob(None, "this worker's name in KV transfers (default: its pid)")
    kv_transfer_dir: str | None = _knob(None, "shm connector directory (default /dev/shm/ponder-kv-UID)")
    kv_transfer_port: int | None = _knob(None, "torch connector: port of this worker's TCPStore")
    kv_transfer_debug_delay: float = _knob(0.0, "test only: seconds a KV save pauses half way")

    @classmethod
    def from_kwargs(cls, model: str | None = None, **kwargs: Any) -> EngineArgs:
        """EngineArgs(model, **kwargs) with a typed error for a knob that does not exist."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise InvalidRequestError(
                f"unknown engine argument {unknown[0]!r}; the engine's arguments: "
                + ", ".join(sorted(known - {"model"})),
                param=unknown[0],
            )
        return cls(model=model, **kwargs)

    @classmethod
    def add_cli_args(cls, parser: argparse.ArgumentParser) -> None:
        """The flags of every knob but `model`, which each command declares its own way."""
        group = parser.add_argument_group("engine")
        hints = typing.get_type_hints(cls)
        for spec in dataclasses.fields(cls):
            if spec.name != "model":
                _add_flag(group, spec, hints[spec.name])

    @classmethod
    def from_cli_args(cls, args: argparse.Namespace, **overrides: Any) -> EngineArgs:
        values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
        return cls(**{**values, **overrides})

    def create_engine_config(self) -> EngineConfig:
        return EngineConfig(
            model=ModelConfig(
                model=str(self.model) if self.model is not None else str(default_model_dir()),
                dtype=self.dtype,
                max_model_len=self.max_model_len,
                seed=self.seed,
                device=self.device,
                enforce_eager=self.enforce_eager,
            ),
            cache=CacheConfig(
                block_size=self.block_size,
                enable_prefix_caching=self.enable_prefix_caching,
                kv_cache_memory=self.kv_cache_memory,
                gpu_memory_utilization=self.gpu_memory_utilization,
                num_kv_blocks=self.num_kv_blocks,
            ),
            scheduler=SchedulerConfig(
                max_num_seqs=self.max_num_seqs,
                max_num_batched_tokens=self.max_num_batched_tokens,
                policy=self.scheduling_policy,
                async_scheduling=self.async_scheduling,
                async_min_batch_size=self.async_min_batch_size,
            ),
            parallel=ParallelConfig(tensor_parallel_size=self.tensor_parallel_size),
            kv_transfer=KVTransferConfig(
                connector=self.kv_connector,
                timeout_s=self.kv_transfer_timeout,
                failure_policy=self.kv_load_failure_policy,
                checksum=self.kv_transfer_checksum,
                worker_name=self.kv_worker_name,
                shm_dir=self.kv_transfer_dir,
                port=self.kv_transfer_port,
                debug_save_delay_s=self.kv_transfer_debug_delay,
            ),
            speculative=self._speculative_config(),
        )

    def _speculative_config(self) -> SpeculativeConfig | None:
        if self.speculative_method is None:
            return None
        return SpeculativeConfig(
            method=self.speculative_method,
            num_speculative_tokens=self.num_speculative_tokens,
            draft_model=self.speculative_model,
            draft_layers=self.speculative_draft_layers,
            ngram_min=self.ngram_min,
            ngram_max=self.ngram_max,
            disable_batch_size=self.speculative_disable_batch_size,
            token_cost=self.speculative_token_cost,
            adaptive=self.speculative_adaptive,
        )


def _add_flag(group: argparse._ArgumentGroup, spec: dataclasses.Field, hint: Any) -> None:
    flag = "--" + spec.name.replace("_", "-")
    extras = {k: v for k, v in spec.metadata.items() if k != "help"}
    options: dict[str, Any] = {"dest": spec.name, "default": spec.default, "help": spec.metadata["help"]}
    if hint == bool | None:  # three states: on, off, or the engine decides
        group.add_argument(flag, action=argparse.BooleanOptionalAction, **options)
    elif hint is bool and spec.default:
        group.add_argument("--no-" + flag[2:], action="store_false", **options)
    elif hint is bool:
        group.add_argument(flag, action="store_true", **options)
    else:
        value_type = next(t for t in typing.get_args(hint) or (hint,) if t is not type(None))
        group.add_argument(flag, **{"type": value_type, **extras, **options})
