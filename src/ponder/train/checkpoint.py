"""Training checkpoints (for --resume) and the final export in Hugging Face format."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import GenerationConfig, Qwen3ForCausalLM

from ponder.errors import ModelLoadError
from ponder.train.chat_format import ENDOFTEXT, IM_END

CHECKPOINT_FILE = "train_state.pt"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
# Settings that change the model's shape: a resumed run must not change them.
_SHAPE_SETTINGS = (
    "hidden_size",
    "num_layers",
    "num_heads",
    "num_kv_heads",
    "head_dim",
    "intermediate_size",
)


@dataclass
class TrainState:
    step: int = 0
    elapsed_seconds: float = 0.0  # training time before this process started (for budgets)


def save_checkpoint(
    directory: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    state: TrainState,
    config: dict[str, Any],
) -> Path:
    """Write the full training state atomically, so a crash never leaves a torn checkpoint."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CHECKPOINT_FILE
    partial = directory / (CHECKPOINT_FILE + ".partial")
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": state.step,
            "elapsed_seconds": state.elapsed_seconds,
            "config": config,
            "torch_rng": torch.get_rng_state(),
        },
        partial,
    )
    os.replace(partial, path)
    return path


def load_checkpoint(
    directory: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    config: dict[str, Any],
) -> TrainState:
    path = directory / CHECKPOINT_FILE
    if not path.is_file():
        raise ModelLoadError(f"--resume: no checkpoint at {path}; start without --resume")
    saved = torch.load(path, map_location="cpu", weights_only=False)
    changed = [k for k in _SHAPE_SETTINGS if saved["config"].get(k) != config.get(k)]
    if changed:
        raise ModelLoadError(
            f"--resume: the checkpoint at {path} was trained with different {changed}; "
            "use the same settings or a new out_dir"
        )
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    torch.set_rng_state(saved["torch_rng"])
    return TrainState(step=saved["step"], elapsed_seconds=saved["elapsed_seconds"])


def export_model(model: Qwen3ForCausalLM, tokenizer_dir: Path, out_dir: Path, save_dtype: str) -> Path:
    """Save weights, config, generation config and tokenizer files loadable by transformers."""
    out_dir.mkdir(parents=True, exist_ok=True)
    dtype = getattr(torch, save_dtype)
    # Convert a copy of the weights: casting the live model down and back would lose precision.
    weights = {name: tensor.detach().to("cpu", dtype) for name, tensor in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        weights.pop("lm_head.weight", None)  # the embedding is the head; store it once
    model.save_pretrained(out_dir, state_dict=weights)
    _patch_config(out_dir / "config.json", save_dtype)
    eos_ids = [model.config.eos_token_id, model.config.pad_token_id]
    generation = GenerationConfig(eos_token_id=eos_ids, pad_token_id=model.config.pad_token_id)
    generation.save_pretrained(out_dir)
    for name in TOKENIZER_FILES:
        shutil.copyfile(tokenizer_dir / name, out_dir / name)
    _check_special_tokens(out_dir)
    return out_dir


def set_budget_close(model_dir: Path, text: str) -> None:
    """Name the model's own close of a thought cut by a thinking budget (ponder.engine.thinking)."""
    path = model_dir / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config["thinking_budget_close"] = text
    path.write_text(json.dumps(config, indent=2) + "\n")


def _patch_config(config_path: Path, save_dtype: str) -> None:
    """Record the saved dtype, and ``rope_theta`` at the top level where transformers 4.x and
    most loaders read it (transformers 5 nests it in ``rope_parameters``)."""
    config = json.loads(config_path.read_text())
    rope = config.get("rope_parameters") or {}
    if "rope_theta" in rope:
        config["rope_theta"] = rope["rope_theta"]
    config["dtype"] = save_dtype
    config["torch_dtype"] = save_dtype
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def _check_special_tokens(out_dir: Path) -> None:
    tokenizer_config = json.loads((out_dir / "tokenizer_config.json").read_text())
    if tokenizer_config.get("eos_token") != IM_END or tokenizer_config.get("pad_token") != ENDOFTEXT:
        raise ModelLoadError(f"{out_dir}: tokenizer_config.json lacks the expected eos/pad tokens")
