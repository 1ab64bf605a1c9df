"""The built-in reasoning model that ships inside the package (a Hugging Face checkpoint dir)."""

from __future__ import annotations

from pathlib import Path

from ponder.errors import ModelLoadError

BUILTIN_MODEL_DIR = Path(__file__).parent / "ponder-reasoner"


def default_model_dir() -> Path:
    if not (BUILTIN_MODEL_DIR / "config.json").is_file():
        raise ModelLoadError(
            f"the built-in model is not installed at {BUILTIN_MODEL_DIR}; pass a model directory"
        )
    return BUILTIN_MODEL_DIR
