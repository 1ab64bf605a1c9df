"""The offline API: sampling determinism, stop conditions, chat, and bad input."""

import json

import pytest

from ponder import (
    LLM,
    InvalidRequestError,
    ModelLoadError,
    PromptTooLongError,
    SamplingParams,
    UnsupportedModelError,
)


@pytest.fixture(scope="module")
def llm(qwen3_ckpt, async_scheduling):
    knobs = dict(block_size=4, kv_cache_memory=1 << 24, max_model_len=128)
    return LLM(str(qwen3_ckpt), async_scheduling=async_scheduling, **knobs)


def test_seeded_sampling_is_the_same_alone_and_in_a_batch(llm):
    params = SamplingParams(temperature=1.0, top_p=0.9, max_tokens=10, seed=42, ignore_eos=True)
    alone = llm.generate(["The quick brown fox"], params)[0].outputs[0].token_ids
    noise = SamplingParams(temperature=1.0, max_tokens=10, ignore_eos=True)
    mixed = llm.generate(["Hello", "The quick brown fox", "Numbers like 0 1 2"], [noise, params, noise])
    assert mixed[1].outputs[0].token_ids == alone
    other_seed = SamplingParams(temperature=1.0, top_p=0.9, max_tokens=10, seed=43, ignore_eos=True)
    assert llm.generate(["The quick brown fox"], other_seed)[0].outputs[0].token_ids != alone


def test_n_seeded_samples_differ_and_repeat(llm):
    params = SamplingParams(n=4, temperature=1.0, max_tokens=8, seed=0, ignore_eos=True)
    first = [c.token_ids for c in llm.generate(["Let me think"], params)[0].outputs]
    second = [c.token_ids for c in llm.generate(["Let me think"], params)[0].outputs]
    assert first == second
    assert len({tuple(t) for t in first}) > 1


def test_max_tokens_min_tokens_and_length_finish(llm):
    out = llm.generate(["Hello"], SamplingParams(temperature=0, max_tokens=5, ignore_eos=True))[0]
    assert len(out.outputs[0].token_ids) == 5 and out.outputs[0].finish_reason == "length"


def test_stop_token_ids_end_the_output(llm):
    base = SamplingParams(temperature=0, max_tokens=6, ignore_eos=True)
    tokens = llm.generate(["Hello"], base)[0].outputs[0].token_ids
    params = SamplingParams(temperature=0, max_tokens=6, ignore_eos=True, stop_token_ids=[tokens[2]])
    out = llm.generate(["Hello"], params)[0].outputs[0]
    assert out.token_ids == tokens[: tokens.index(tokens[2]) + 1]
    assert out.finish_reason == "stop" and out.stop_reason == tokens[2]


def test_stop_string_is_cut_from_the_text(llm):
    base = SamplingParams(temperature=0, max_tokens=16, ignore_eos=True)
    text = llm.generate(["The answer is"], base)[0].outputs[0].text
    assert len(text) >= 4
    stop = text[2:4]
    out = llm.generate(
        ["The answer is"],
        SamplingParams(temperature=0, max_tokens=16, ignore_eos=True, stop=[stop]),
    )[0].outputs[0]
    assert out.finish_reason == "stop" and out.stop_reason == stop
    assert out.text == text[: text.index(stop)]


def test_chat_applies_the_template(llm):
    out = llm.chat([{"role": "user", "content": "Hi"}], SamplingParams(max_tokens=4, temperature=0))[0]
    assert out.prompt.startswith("<|im_start|>user\nHi<|im_end|>")
    assert out.prompt.endswith("<|im_start|>assistant\n")


@pytest.mark.parametrize(
    "kwargs, param",
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"temperature": -1.0}, "temperature"),
        ({"stop": 5}, "stop"),
        ({"stop": ["ok", 3]}, "stop"),
        ({"n": 0}, "n"),
        ({"logprobs": 50}, "logprobs"),
    ],
)
def test_bad_sampling_params_raise_typed_errors(kwargs, param):
    with pytest.raises(InvalidRequestError) as info:
        SamplingParams(**kwargs)
    assert info.value.param == param


def test_bad_prompts_raise_and_the_engine_keeps_serving(llm):
    with pytest.raises(InvalidRequestError, match="empty"):
        llm.generate([""], SamplingParams(max_tokens=2))
    with pytest.raises(InvalidRequestError, match="empty"):
        llm.generate([{"prompt_token_ids": []}], SamplingParams(max_tokens=2))
    with pytest.raises(PromptTooLongError, match="max_model_len is 128"):
        llm.generate([{"prompt_token_ids": [1] * 128}], SamplingParams(max_tokens=2))
    with pytest.raises(InvalidRequestError, match="token ids"):
        llm.generate([{"prompt_token_ids": [1, 10**6]}], SamplingParams(max_tokens=2))
    with pytest.raises(InvalidRequestError, match="prompt must be"):
        llm.generate([None], SamplingParams(max_tokens=2))
    # nothing was queued by the failed calls, and the engine still serves
    assert not llm.engine.has_unfinished_requests()
    out = llm.generate(["Hello", "world"], SamplingParams(max_tokens=3, ignore_eos=True))
    assert all(len(o.outputs[0].token_ids) == 3 for o in out)


def test_missing_files_and_unknown_architecture_are_clear_errors(tmp_path, qwen3_ckpt):
    with pytest.raises(ModelLoadError, match="config.json"):
        LLM(str(tmp_path))
    broken = tmp_path / "unknown"
    broken.mkdir()
    config = json.loads((qwen3_ckpt / "config.json").read_text())
    config["architectures"] = ["MambaForCausalLM"]
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedModelError, match="MambaForCausalLM"):
        LLM(str(broken))
    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (no_weights / name).write_bytes((qwen3_ckpt / name).read_bytes())
    with pytest.raises(ModelLoadError, match="safetensors"):
        LLM(str(no_weights))


def test_more_samples_than_max_num_seqs_is_rejected_not_queued_forever(qwen3_ckpt):
    llm = LLM(str(qwen3_ckpt), block_size=4, kv_cache_memory=1 << 24, max_model_len=64, max_num_seqs=4)
    with pytest.raises(InvalidRequestError, match="max_num_seqs=4") as caught:
        llm.generate(["Hello"], SamplingParams(n=5, max_tokens=2))
    assert caught.value.param == "n"
    assert not llm.engine.has_unfinished_requests()
    assert len(llm.generate(["Hello"], SamplingParams(n=4, max_tokens=2))[0].outputs) == 4


def test_kv_pool_smaller_than_max_model_len_is_rejected(qwen3_ckpt):
    with pytest.raises(InvalidRequestError, match="max_model_len"):
        LLM(str(qwen3_ckpt), block_size=4, num_kv_blocks=2, max_model_len=64)


def test_stop_strings_wait_for_min_tokens(llm):
    base = SamplingParams(temperature=0, max_tokens=16, ignore_eos=True)
    text = llm.generate(["The answer is"], base)[0].outputs[0].text
    stop = text[1:3]  # would match within the first tokens
    params = SamplingParams(temperature=0, max_tokens=16, ignore_eos=True, stop=[stop], min_tokens=8)
    out = llm.generate(["The answer is"], params)[0].outputs[0]
    assert len(out.token_ids) >= 8
    assert out.text.startswith(text[: text.index(stop) + len(stop)])
