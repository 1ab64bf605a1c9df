"""Architecture name (config.json "architectures") -> model class."""

from __future__ import annotations

from ponder.errors import UnsupportedModelError
from ponder.models.hf_config import ARCHITECTURE_TRAITS, ArchConfig
from ponder.models.llama import DecoderForCausalLM

# Llama, Qwen2 and Qwen3 share one decoder; their differences live in ARCHITECTURE_TRAITS.
MODEL_CLASSES: dict[str, type[DecoderForCausalLM]] = {
    name: DecoderForCausalLM for name in ARCHITECTURE_TRAITS
}
SUPPORTED_ARCHITECTURES: tuple[str, ...] = tuple(sorted(MODEL_CLASSES))


def model_class_for(arch: ArchConfig) -> type[DecoderForCausalLM]:
    try:
        return MODEL_CLASSES[arch.architecture]
    except KeyError:
        raise UnsupportedModelError(
            f"architecture {arch.architecture!r} is not supported; supported: "
            f"{', '.join(SUPPORTED_ARCHITECTURES)}"
        ) from None
