"""Model definitions and loading from HF checkpoint directories."""

from ponder.models.hf_config import ArchConfig, read_arch_config
from ponder.models.llama import DecoderForCausalLM
from ponder.models.loader import (
    kv_cache_bytes_per_token,
    kv_cache_shape,
    load_model,
    resolve_dtype,
)
from ponder.models.registry import SUPPORTED_ARCHITECTURES

__all__ = [
    "SUPPORTED_ARCHITECTURES",
    "ArchConfig",
    "DecoderForCausalLM",
    "kv_cache_bytes_per_token",
    "kv_cache_shape",
    "load_model",
    "read_arch_config",
    "resolve_dtype",
]
