"""Builds a model from a HF checkpoint dir: dtype choice, safetensors shards, weight loading."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from ponder.distributed.sharding import LazyWeight, num_kv_heads_per_rank
from ponder.errors import InvalidRequestError, ModelLoadError
from ponder.models.hf_config import ArchConfig
from ponder.models.llama import DecoderForCausalLM
from ponder.models.registry import model_class_for

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


def resolve_dtype(arch: ArchConfig, requested: str, device: torch.device | str) -> torch.dtype:
    """ "auto" -> the checkpoint's dtype (float32 if unstated), but float32 on CPU; float16 on CPU
    -> float32 always."""
    on_cpu = torch.device(device).type == "cpu"
    if requested == "auto":
        if on_cpu:  # half-precision matmuls are slow (or missing) on most CPUs
            return torch.float32
        return DTYPES.get(str(arch.torch_dtype).removeprefix("torch."), torch.float32)
    if requested not in DTYPES:
        raise InvalidRequestError(
            f"dtype {requested!r} is not supported; use one of: auto, {', '.join(DTYPES)}",
            param="dtype",
        )
    dtype = DTYPES[requested]
    return torch.float32 if dtype == torch.float16 and on_cpu else dtype


def kv_heads_per_rank(arch: ArchConfig, tp_size: int = 1) -> int:
    """KV heads one rank holds: its share, or 1 when heads are replicated (fewer than ranks)."""
    return num_kv_heads_per_rank(arch.num_key_value_heads, tp_size)


def kv_cache_bytes_per_token(arch: ArchConfig, dtype: torch.dtype, tp_size: int = 1) -> int:
    """Bytes of K and V over all layers that one token occupies on one rank."""
    element_size = torch.empty((), dtype=dtype).element_size()
    per_layer = 2 * kv_heads_per_rank(arch, tp_size) * arch.head_dim * element_size
    return arch.num_hidden_layers * per_layer


def kv_cache_shape(
    arch: ArchConfig, num_blocks: int, block_size: int, tp_size: int = 1
) -> tuple[int, int, int, int]:
    """Shape of one layer's K (or V) cache: [num_blocks, block_size, Hkv_per_rank, head_dim]."""
    return (num_blocks, block_size, kv_heads_per_rank(arch, tp_size), arch.head_dim)


def load_model(
    model_dir: str | Path,
    arch: ArchConfig,
    dtype: torch.dtype,
    device: torch.device | str,
    *,
    tp_rank: int = 0,
    tp_size: int = 1,
) -> DecoderForCausalLM:
    """Instantiate the architecture on `device` in `dtype` and load the checkpoint's weights."""
    model_dir = Path(model_dir)
    files = checkpoint_files(model_dir)
    with _default_dtype(dtype), torch.device(device):
        model = model_class_for(arch)(arch, tp_rank=tp_rank, tp_size=tp_size)
    model.load_weights(iter_checkpoint_weights(files))
    return model.eval()


def checkpoint_files(model_dir: Path) -> list[Path]:
    """The safetensors files of a checkpoint, via model.safetensors.index.json when sharded."""
    index_path = model_dir / "model.safetensors.index.json"
    if index_path.is_file():
        try:
            weight_map = json.loads(index_path.read_text(encoding="utf-8"))["weight_map"]
            names = sorted(set(weight_map.values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise ModelLoadError(f"{index_path} is not a valid safetensors index: {error}") from None
        files = [model_dir / name for name in names]
        for file in files:
            if not file.is_file():
                raise ModelLoadError(f"shard {file} listed in {index_path} is missing")
        return files
    single = model_dir / "model.safetensors"
    if single.is_file():
        return [single]
    others = sorted(model_dir.glob("*.safetensors"))
    if others:
        return others
    raise ModelLoadError(
        f"no safetensors weights in {model_dir} (expected model.safetensors or "
        "model.safetensors.index.json); .bin/.pt checkpoints must be converted to safetensors"
    )


def iter_checkpoint_weights(files: list[Path]) -> Iterator[tuple[str, LazyWeight]]:
    """Each tensor unread: its parameter's weight_loader reads only this rank's slice of it."""
    for file in files:
        try:
            with safe_open(str(file), framework="pt", device="cpu") as handle:
                for name in handle.keys():
                    yield name, LazyWeight(handle.get_slice(name))
        except (SafetensorError, OSError) as error:
            raise ModelLoadError(f"cannot read {file}: {error} (corrupt or truncated?)") from None


@contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)
