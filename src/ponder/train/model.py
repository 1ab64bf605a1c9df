"""Build the built-in model: a small Qwen3, so it is served through the same path as real ones."""

from __future__ import annotations

import torch
from tokenizers import Tokenizer
from transformers import Qwen3Config, Qwen3ForCausalLM

from ponder.train.chat_format import ENDOFTEXT, IM_END
from ponder.train.config import TrainConfig

_VOCAB_MULTIPLE = 64  # padded embedding rows keep matmuls on fast tensor-core shapes


def padded_vocab_size(tokenizer_vocab_size: int) -> int:
    return -(-tokenizer_vocab_size // _VOCAB_MULTIPLE) * _VOCAB_MULTIPLE


def qwen3_config(config: TrainConfig, tokenizer: Tokenizer) -> Qwen3Config:
    return Qwen3Config(
        vocab_size=padded_vocab_size(tokenizer.get_vocab_size()),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_kv_heads,
        head_dim=config.head_dim,
        max_position_embeddings=config.max_position_embeddings,
        rope_parameters={"rope_type": "default", "rope_theta": config.rope_theta},
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.token_to_id(IM_END),
        pad_token_id=tokenizer.token_to_id(ENDOFTEXT),
        use_cache=True,
    )


def build_model(config: TrainConfig, tokenizer: Tokenizer) -> Qwen3ForCausalLM:
    model = Qwen3ForCausalLM(qwen3_config(config, tokenizer))
    model.config.use_cache = True  # for generation after export; training passes use_cache=False
    return model


def count_parameters(model: Qwen3ForCausalLM) -> int:
    """Distinct parameters (the tied embedding and output head count once)."""
    return sum(parameter.numel() for parameter in model.parameters())


def load_initial_weights(model: Qwen3ForCausalLM, checkpoint_dir: str) -> None:
    """Start from a trained checkpoint of the same shape (fine-tuning): every weight, strictly."""
    from ponder.errors import ModelLoadError

    try:
        trained = Qwen3ForCausalLM.from_pretrained(checkpoint_dir, dtype=torch.float32)
    except OSError as error:
        raise ModelLoadError(f"init_from: cannot load {checkpoint_dir}: {error}") from error
    try:
        model.load_state_dict(trained.state_dict(), strict=True)
    except RuntimeError as error:
        raise ModelLoadError(
            f"init_from: {checkpoint_dir} does not fit this model's shape: {error}"
        ) from error
