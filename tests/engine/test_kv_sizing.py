"""The profiling step that sizes a GPU KV pool stays inside the model's context and its own blocks."""

from __future__ import annotations

import pytest
import torch

from ponder.engine.kv_sizing import profile_step
from ponder.layers.forward_context import forward_context
from ponder.models.hf_config import read_arch_config
from ponder.models.loader import load_model
from tests.fixtures.checkpoints import make_checkpoint


@pytest.mark.parametrize(("num_tokens", "max_seq_len"), [(100, 100), (2048, 1024), (200, 64), (65, 64)])
def test_profile_step_never_passes_the_context(num_tokens: int, max_seq_len: int) -> None:
    positions, metadata = profile_step(num_tokens, max_seq_len, 16, torch.device("cpu"))
    assert positions.numel() == num_tokens == sum(metadata.query_lens_cpu)
    assert int(positions.max()) < max_seq_len
    assert metadata.query_start_loc.tolist()[-1] == num_tokens
    # Every token writes its own slot, inside the blocks its sequence owns.
    slots = metadata.slot_mapping.tolist()
    assert len(set(slots)) == num_tokens
    for row, start, n in zip(
        metadata.block_tables.tolist(), metadata.query_start_loc.tolist(), metadata.query_lens_cpu
    ):
        owned = {block * 16 + offset for block in row for offset in range(16)}
        assert set(slots[start : start + n]) <= owned


def test_a_step_budget_larger_than_the_context_runs_the_model(tmp_path) -> None:
    # A 64-position model profiled with a 200-token budget: one long sequence would read the
    # rotary table past its end (an illegal memory access on the GPU).
    ckpt = make_checkpoint(tmp_path, "qwen3", max_position_embeddings=64)
    arch = read_arch_config(ckpt)
    model = load_model(ckpt, arch, torch.float32, torch.device("cpu"))
    positions, metadata = profile_step(200, 64, 16, torch.device("cpu"))
    shape = (metadata.block_tables.numel(), 16, arch.num_key_value_heads, arch.head_dim)
    model.bind_kv_cache([(torch.zeros(shape), torch.zeros(shape)) for _ in range(arch.num_hidden_layers)])
    with torch.inference_mode(), forward_context(metadata):
        hidden = model(torch.zeros(200, dtype=torch.long), positions)
    assert hidden.shape[0] == 200 and torch.isfinite(hidden).all()
