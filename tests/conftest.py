"""Shared fixtures: tiny random-init checkpoints of each supported architecture."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.checkpoints import make_checkpoint


@pytest.fixture(scope="session")
def qwen3_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Qwen3: q/k norm, head_dim 32 != hidden/heads, GQA 4:2, 3 layers, sharded safetensors."""
    return make_checkpoint(tmp_path_factory.mktemp("qwen3"), "qwen3", sharded=True)


@pytest.fixture(scope="session")
def qwen2_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Qwen2: q/k/v bias (no o bias), GQA 4:2, head_dim 16, 2 layers, untied embeddings."""
    return make_checkpoint(tmp_path_factory.mktemp("qwen2"), "qwen2", num_layers=2, head_dim=16, seed=1)


@pytest.fixture(scope="session")
def llama_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Llama: tied embeddings, MQA (GQA 4:1), llama3 rope scaling, odd intermediate size."""
    return make_checkpoint(
        tmp_path_factory.mktemp("llama"),
        "llama",
        num_layers=2,
        num_kv_heads=1,
        head_dim=16,
        intermediate_size=88,
        tie_word_embeddings=True,
        rope_scaling={
            "rope_type": "llama3",
            "factor": 4.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 32,
        },
        seed=2,
    )
