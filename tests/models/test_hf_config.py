"""read_arch_config: fields of each architecture, old and new config spellings, and errors."""

from __future__ import annotations

import json

import pytest

from ponder.errors import ModelLoadError, UnsupportedModelError
from ponder.models import SUPPORTED_ARCHITECTURES, read_arch_config

MINIMAL = {
    "architectures": ["LlamaForCausalLM"],
    "vocab_size": 100,
    "hidden_size": 32,
    "intermediate_size": 48,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": 128,
}


def write_config(path, config, generation=None):
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config))
    if generation is not None:
        (path / "generation_config.json").write_text(json.dumps(generation))
    return path


def test_fixture_checkpoints_read_back_their_shapes(qwen3_ckpt, qwen2_ckpt, llama_ckpt):
    qwen3, qwen2, llama = (read_arch_config(p) for p in (qwen3_ckpt, qwen2_ckpt, llama_ckpt))
    assert qwen3.architecture == "Qwen3ForCausalLM" and qwen3.qk_norm and qwen3.head_dim == 32
    assert (qwen3.num_attention_heads, qwen3.num_key_value_heads) == (4, 2)
    assert not qwen3.qkv_bias and not qwen3.o_proj_bias
    assert qwen2.qkv_bias and not qwen2.o_proj_bias and not qwen2.qk_norm
    assert llama.tie_word_embeddings and llama.num_key_value_heads == 1
    assert llama.rope_scaling is not None and llama.rope_scaling["rope_type"] == "llama3"
    assert llama.rope_scaling["original_max_position_embeddings"] == 32
    assert qwen3.rope_scaling is None and qwen3.rope_theta == 10000.0
    for arch in (qwen3, qwen2, llama):
        assert arch.torch_dtype == "float32" and arch.vocab_size == 331
        # generation_config lists <|im_end|> then <|endoftext|>; config's eos is a duplicate.
        assert arch.eos_token_ids == (2, 0)


def test_legacy_spellings_rope_scaling_rope_theta_torch_dtype(tmp_path):
    config = {
        **MINIMAL,
        "rope_scaling": {"type": "linear", "factor": 2.0},
        "rope_theta": 500000.0,
        "torch_dtype": "bfloat16",
        "eos_token_id": 7,
        "bos_token_id": 1,
    }
    arch = read_arch_config(write_config(tmp_path, config, {"eos_token_id": [5, 7]}))
    assert arch.rope_theta == 500000.0
    assert arch.rope_scaling == {"rope_type": "linear", "factor": 2.0}
    assert arch.torch_dtype == "bfloat16"
    assert arch.eos_token_ids == (5, 7) and arch.bos_token_id == 1
    assert arch.head_dim == 8 and arch.num_key_value_heads == 4  # derived defaults


def test_transformers5_rope_parameters_and_attention_bias(tmp_path):
    config = {
        **MINIMAL,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1e6},
        "attention_bias": True,
        "dtype": "float16",
    }
    arch = read_arch_config(write_config(tmp_path, config))
    assert arch.rope_theta == 1e6 and arch.rope_scaling is None
    assert arch.qkv_bias and arch.o_proj_bias and arch.torch_dtype == "float16"
    assert arch.eos_token_ids == () and arch.bos_token_id is None


def test_missing_directory_and_missing_config(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        read_arch_config(tmp_path / "nowhere")
    with pytest.raises(ModelLoadError, match="config.json not found"):
        read_arch_config(tmp_path)


def test_invalid_json_names_the_file(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match=r"config\.json is not valid JSON"):
        read_arch_config(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(MINIMAL))
    (tmp_path / "generation_config.json").write_text("[1, 2")
    with pytest.raises(ModelLoadError, match=r"generation_config\.json is not valid JSON"):
        read_arch_config(tmp_path)


def test_unknown_architecture_lists_supported_ones(tmp_path):
    write_config(tmp_path, {**MINIMAL, "architectures": ["GPT2LMHeadModel"]})
    with pytest.raises(UnsupportedModelError, match="GPT2LMHeadModel") as error:
        read_arch_config(tmp_path)
    assert all(name in str(error.value) for name in SUPPORTED_ARCHITECTURES)


@pytest.mark.parametrize("key", ["architectures", "hidden_size", "num_attention_heads"])
def test_missing_required_key_names_key_and_file(tmp_path, key):
    write_config(tmp_path, {k: v for k, v in MINIMAL.items() if k != key})
    with pytest.raises(ModelLoadError, match=rf"config\.json is missing the required key '{key}'"):
        read_arch_config(tmp_path)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"rope_parameters": {"rope_type": "yarn", "factor": 4.0}}, "yarn"),
        ({"use_sliding_window": True}, "sliding-window"),
        ({"hidden_act": "gelu"}, "gelu"),
    ],
)
def test_unsupported_options_are_refused(tmp_path, extra, message):
    write_config(tmp_path, {**MINIMAL, **extra})
    with pytest.raises(UnsupportedModelError, match=message):
        read_arch_config(tmp_path)


def test_bad_values_are_load_errors(tmp_path):
    write_config(tmp_path, {**MINIMAL, "num_key_value_heads": 3})
    with pytest.raises(ModelLoadError, match="multiple of num_key_value_heads"):
        read_arch_config(tmp_path)
    write_config(tmp_path, {**MINIMAL, "hidden_size": "wide"})
    with pytest.raises(ModelLoadError, match="wrong type"):
        read_arch_config(tmp_path)


def test_arch_config_is_frozen(qwen2_ckpt):
    arch = read_arch_config(qwen2_ckpt)
    with pytest.raises(AttributeError):
        arch.hidden_size = 1
