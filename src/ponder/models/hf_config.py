"""ArchConfig: the architecture facts ponder needs, read from a HF checkpoint's config files."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ponder.errors import ModelLoadError, UnsupportedModelError
from ponder.layers.rotary import SUPPORTED_ROPE_TYPES, rope_type_of


@dataclass(frozen=True)
class ArchitectureTraits:
    """How a supported architecture differs from plain Llama."""

    # None: follow the config's `attention_bias` flag.
    qkv_bias: bool | None
    o_proj_bias: bool | None
    qk_norm: bool


ARCHITECTURE_TRAITS: dict[str, ArchitectureTraits] = {
    "LlamaForCausalLM": ArchitectureTraits(qkv_bias=None, o_proj_bias=None, qk_norm=False),
    "Qwen2ForCausalLM": ArchitectureTraits(qkv_bias=True, o_proj_bias=False, qk_norm=False),
    "Qwen3ForCausalLM": ArchitectureTraits(qkv_bias=None, o_proj_bias=None, qk_norm=True),
}

_REQUIRED_KEYS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "max_position_embeddings",
)


@dataclass(frozen=True)
class ArchConfig:
    architecture: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    rms_norm_eps: float
    rope_theta: float
    max_position_embeddings: int
    tie_word_embeddings: bool
    qkv_bias: bool  # bias on q/k/v projections (Qwen2 always; Llama/Qwen3 by `attention_bias`)
    o_proj_bias: bool  # bias on the output projection (`attention_bias`; never for Qwen2)
    mlp_bias: bool
    qk_norm: bool  # per-head RMSNorm on q and k before RoPE (Qwen3)
    torch_dtype: str | None  # checkpoint dtype name, e.g. "bfloat16"; None if unstated
    eos_token_ids: tuple[int, ...]
    bos_token_id: int | None
    # None for plain RoPE; otherwise the scaling dict with a "rope_type" key. Not hashable.
    rope_scaling: dict[str, Any] | None = field(default=None, hash=False)

    @property
    def attention_bias(self) -> bool:
        return self.qkv_bias or self.o_proj_bias


def read_arch_config(model_dir: str | Path) -> ArchConfig:
    """Read config.json (+ generation_config.json if present) of a HF checkpoint directory."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelLoadError(f"model directory {model_dir} does not exist or is not a directory")
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise ModelLoadError(f"{config_path} not found: a HF checkpoint directory needs config.json")
    config = _read_json(config_path)
    generation_path = model_dir / "generation_config.json"
    generation = _read_json(generation_path) if generation_path.is_file() else {}
    return _arch_config_from_dicts(config, generation, config_path)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelLoadError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data


def _require(config: dict[str, Any], key: str, path: Path) -> Any:
    if config.get(key) is None:
        raise ModelLoadError(f"{path} is missing the required key {key!r}")
    return config[key]


def _architecture(config: dict[str, Any], path: Path) -> str:
    architectures = _require(config, "architectures", path)
    if not isinstance(architectures, list) or not architectures:
        raise ModelLoadError(f"{path}: 'architectures' must be a non-empty list")
    name = architectures[0]
    if name not in ARCHITECTURE_TRAITS:
        raise UnsupportedModelError(
            f"architecture {name!r} in {path} is not supported; supported: "
            f"{', '.join(sorted(ARCHITECTURE_TRAITS))}"
        )
    return name


def _check_supported_options(config: dict[str, Any], path: Path) -> None:
    if config.get("hidden_act", "silu") != "silu":
        raise UnsupportedModelError(f"{path}: hidden_act {config['hidden_act']!r} (only 'silu')")
    if config.get("use_sliding_window"):
        raise UnsupportedModelError(f"{path}: sliding-window attention is not supported")


def _rope(config: dict[str, Any], path: Path) -> tuple[float, dict[str, Any] | None]:
    """(rope_theta, rope_scaling) from transformers 5 `rope_parameters` or older `rope_scaling`."""
    parameters = config.get("rope_parameters") or config.get("rope_scaling") or {}
    if not isinstance(parameters, dict):
        raise ModelLoadError(f"{path}: rope_parameters / rope_scaling must be a JSON object")
    if "full_attention" in parameters and isinstance(parameters["full_attention"], dict):
        parameters = parameters["full_attention"]  # nested by layer type
    theta = float(parameters.get("rope_theta", config.get("rope_theta", 10000.0)))
    rope_type = rope_type_of(parameters)
    if rope_type not in SUPPORTED_ROPE_TYPES:
        raise UnsupportedModelError(
            f"{path}: rope type {rope_type!r} is not supported; supported: {', '.join(SUPPORTED_ROPE_TYPES)}"
        )
    if rope_type == "default":
        return theta, None
    scaling = {k: v for k, v in parameters.items() if k not in ("rope_theta", "type")}
    scaling["rope_type"] = rope_type
    if rope_type == "llama3":
        scaling.setdefault("original_max_position_embeddings", config["max_position_embeddings"])
    return theta, scaling


def _token_ids(value: Any) -> list[int]:
    if value is None:
        return []
    return [int(v) for v in value] if isinstance(value, list) else [int(value)]


def _arch_config_from_dicts(config: dict[str, Any], generation: dict[str, Any], path: Path) -> ArchConfig:
    architecture = _architecture(config, path)
    for key in _REQUIRED_KEYS:
        _require(config, key, path)
    _check_supported_options(config, path)
    try:
        arch = _build(architecture, config, generation, path)
    except (TypeError, ValueError) as error:
        raise ModelLoadError(f"{path} has a value of the wrong type: {error}") from None
    if arch.num_attention_heads % arch.num_key_value_heads != 0:
        raise ModelLoadError(
            f"{path}: num_attention_heads ({arch.num_attention_heads}) must be a multiple of "
            f"num_key_value_heads ({arch.num_key_value_heads})"
        )
    return arch


def _build(architecture: str, config: dict[str, Any], generation: dict[str, Any], path: Path) -> ArchConfig:
    traits = ARCHITECTURE_TRAITS[architecture]
    attention_bias = bool(config.get("attention_bias", False))
    num_heads = int(config["num_attention_heads"])
    rope_theta, rope_scaling = _rope(config, path)
    eos_ids = _token_ids(generation.get("eos_token_id")) + _token_ids(config.get("eos_token_id"))
    bos = generation.get("bos_token_id", config.get("bos_token_id"))
    return ArchConfig(
        architecture=architecture,
        vocab_size=int(config["vocab_size"]),
        hidden_size=int(config["hidden_size"]),
        intermediate_size=int(config["intermediate_size"]),
        num_hidden_layers=int(config["num_hidden_layers"]),
        num_attention_heads=num_heads,
        num_key_value_heads=int(config.get("num_key_value_heads") or num_heads),
        head_dim=int(config.get("head_dim") or int(config["hidden_size"]) // num_heads),
        rms_norm_eps=float(config.get("rms_norm_eps", 1e-6)),
        rope_theta=rope_theta,
        max_position_embeddings=int(config["max_position_embeddings"]),
        tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
        qkv_bias=attention_bias if traits.qkv_bias is None else traits.qkv_bias,
        o_proj_bias=attention_bias if traits.o_proj_bias is None else traits.o_proj_bias,
        mlp_bias=bool(config.get("mlp_bias", False)),
        qk_norm=traits.qk_norm,
        torch_dtype=config.get("dtype") or config.get("torch_dtype"),
        eos_token_ids=tuple(dict.fromkeys(eos_ids)),
        bos_token_id=None if bos is None else int(bos),
        rope_scaling=rope_scaling,
    )
