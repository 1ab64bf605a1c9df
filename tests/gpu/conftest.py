"""GPU-only tests: run on the device machine; skipped (with the reason) where CUDA is absent."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.fixtures.checkpoints import make_checkpoint

requires_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU; run on the device machine"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/gpu/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.gpu)
            item.add_marker(requires_cuda)


@pytest.fixture(scope="session")
def gpu_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Qwen3 shape with the GPU kernels' head_dim 64 and GQA 4:1."""
    return make_checkpoint(
        tmp_path_factory.mktemp("qwen3_gpu"),
        "qwen3",
        num_layers=3,
        hidden_size=256,
        num_heads=8,
        num_kv_heads=2,
        head_dim=64,
        intermediate_size=512,
        max_position_embeddings=1024,
    )
