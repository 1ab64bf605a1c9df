"""load_model and friends: safetensors discovery, weight checks, dtype choice, KV sizing."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from ponder.errors import InvalidRequestError, ModelLoadError
from ponder.models import (
    DecoderForCausalLM,
    kv_cache_bytes_per_token,
    kv_cache_shape,
    load_model,
    read_arch_config,
    resolve_dtype,
)


def copy_of(ckpt, tmp_path):
    return shutil.copytree(ckpt, tmp_path / "ckpt")


def load(path, dtype=torch.float32):
    return load_model(path, read_arch_config(path), dtype, "cpu")


def test_loads_sharded_and_single_file_checkpoints(qwen3_ckpt, qwen2_ckpt):
    assert len(list(qwen3_ckpt.glob("model-*.safetensors"))) > 2
    for path in (qwen3_ckpt, qwen2_ckpt):
        model = load(path)
        assert isinstance(model, DecoderForCausalLM) and not model.training


def test_tied_head_shares_the_embedding(llama_ckpt):
    model = load(llama_ckpt)
    assert model.lm_head.weight is model.model.embed_tokens.weight


def test_bfloat16_load_keeps_rope_tables_float32_and_restores_default_dtype(qwen2_ckpt):
    model = load(qwen2_ckpt, torch.bfloat16)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert model.model.rotary.cos_cache.dtype == torch.float32
    assert torch.get_default_dtype() == torch.float32
    assert model.compute_logits(torch.randn(2, 64, dtype=torch.bfloat16)).dtype == torch.float32


def test_bind_kv_cache_needs_one_pair_per_layer(qwen2_ckpt):
    model = load(qwen2_ckpt)
    with pytest.raises(ValueError, match="1 KV caches for a model of 2 layers"):
        model.bind_kv_cache([(torch.zeros(1), torch.zeros(1))])


def test_missing_shard_is_named(qwen3_ckpt, tmp_path):
    path = copy_of(qwen3_ckpt, tmp_path)
    shard = sorted(path.glob("model-*.safetensors"))[1]
    shard.unlink()
    with pytest.raises(ModelLoadError, match=rf"{shard.name}.*missing"):
        load(path)


def test_no_safetensors_at_all(qwen2_ckpt, tmp_path):
    path = copy_of(qwen2_ckpt, tmp_path)
    (path / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="no safetensors weights"):
        load(path)


def test_corrupt_file_is_named(qwen2_ckpt, tmp_path):
    path = copy_of(qwen2_ckpt, tmp_path)
    (path / "model.safetensors").write_bytes(b"\x10\x00garbage")
    with pytest.raises(ModelLoadError, match=r"model\.safetensors"):
        load(path)


def test_unexpected_and_missing_weights(qwen2_ckpt, tmp_path):
    path = copy_of(qwen2_ckpt, tmp_path)
    tensors = load_file(path / "model.safetensors")
    save_file(
        {**tensors, "model.layers.0.self_attn.rogue.weight": torch.zeros(2)},
        path / "model.safetensors",
    )
    with pytest.raises(ModelLoadError, match="rogue"):
        load(path)
    del tensors["model.layers.1.self_attn.k_proj.bias"]
    save_file(tensors, path / "model.safetensors")
    with pytest.raises(ModelLoadError, match=r"layers\.1\.self_attn\.qkv_proj\.bias\[k\]"):
        load(path)


def test_shape_mismatch_with_config(qwen2_ckpt, tmp_path):
    path = copy_of(qwen2_ckpt, tmp_path)
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "intermediate_size": 64}))
    with pytest.raises(ModelLoadError, match=r"mlp\..*\(64, 96\) does not match"):
        load(path)


@pytest.mark.parametrize(
    ("checkpoint_dtype", "requested", "device", "expected"),
    [
        ("bfloat16", "auto", "cpu", torch.float32),
        (None, "auto", "cpu", torch.float32),
        ("float16", "auto", "cpu", torch.float32),
        ("float16", "auto", "cuda", torch.float16),
        ("float16", "float16", "cpu", torch.float32),
        ("float32", "bfloat16", "cuda", torch.bfloat16),
        ("bfloat16", "float32", "cpu", torch.float32),
    ],
)
def test_resolve_dtype(qwen2_ckpt, checkpoint_dtype, requested, device, expected):
    arch = read_arch_config(qwen2_ckpt)
    arch = type(arch)(**{**arch.__dict__, "torch_dtype": checkpoint_dtype})
    assert resolve_dtype(arch, requested, torch.device(device)) == expected


def test_resolve_dtype_rejects_unknown_names(qwen2_ckpt):
    with pytest.raises(InvalidRequestError, match="auto, float32, bfloat16, float16") as error:
        resolve_dtype(read_arch_config(qwen2_ckpt), "int8", "cpu")
    assert error.value.param == "dtype"


def test_kv_cache_sizes(qwen3_ckpt, llama_ckpt):
    qwen3, llama = read_arch_config(qwen3_ckpt), read_arch_config(llama_ckpt)
    # K and V, per layer, per KV head, per head dim element
    assert kv_cache_bytes_per_token(qwen3, torch.bfloat16) == 2 * 3 * 2 * 32 * 2
    assert kv_cache_bytes_per_token(llama, torch.float32) == 2 * 2 * 1 * 16 * 4
    assert kv_cache_bytes_per_token(qwen3, torch.float32, tp_size=2) == 2 * 3 * 1 * 32 * 4
    assert kv_cache_shape(qwen3, num_blocks=10, block_size=16) == (10, 16, 2, 32)
    assert kv_cache_shape(llama, num_blocks=10, block_size=16, tp_size=2) == (10, 16, 1, 16)
