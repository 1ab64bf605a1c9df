"""E2E fixtures: real tiny-model servers on localhost (one engine loop each)."""

from __future__ import annotations

import pytest

from tests.server.harness import real_engine, serve, thinking_checkpoint


@pytest.fixture(scope="session")
def thinking_ckpt(qwen3_ckpt, tmp_path_factory):
    """The tiny Qwen3 checkpoint with a template that opens the thought (R1-style)."""
    return thinking_checkpoint(qwen3_ckpt, tmp_path_factory.mktemp("thinking") / "model")


@pytest.fixture(scope="session")
def server(qwen3_ckpt):
    """The shared server: default template, no API key."""
    engine = real_engine(qwen3_ckpt)
    with serve(engine, model_path=str(qwen3_ckpt)) as running:
        running.engine = engine
        yield running


@pytest.fixture(scope="session")
def thinking_server(thinking_ckpt):
    """Schedules asynchronously (the CUDA default), so HTTP runs cover that path on the CPU too."""
    engine = real_engine(thinking_ckpt, async_scheduling=True)
    with serve(engine) as running:
        running.engine = engine
        yield running
