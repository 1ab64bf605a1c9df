"""Tests for the Tokenizer wrapper, checked against transformers' AutoTokenizer on the same dir."""

from __future__ import annotations

import json

import pytest
import transformers

from ponder.engine.tokenizer import Tokenizer
from ponder.errors import InvalidRequestError, ModelLoadError

from ._sampling_tokenizer import write_checkpoint_tokenizer

TEXTS = [
    "Hello world",
    "  leading spaces and trailing  ",
    "<think>Let me see: 2 + 2 = 4</think>The answer is 4.",
    "Café naïve 日本語 😀🚀 👍🏽",
    "<|im_start|>user\nhi<|im_end|>",
    "",
]

CONVERSATIONS = [
    [{"role": "user", "content": "What is 2 + 2?"}],
    [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hi 😀 café"},
        {"role": "assistant", "content": "<think>greet back</think>\n\nHello!"},
        {"role": "user", "content": "  And now?  "},
    ],
]


@pytest.fixture(scope="module", params=["qwen", "llama"])
def checkpoint(request, tmp_path_factory):
    directory = write_checkpoint_tokenizer(tmp_path_factory.mktemp(request.param), request.param)
    return request.param, directory


@pytest.fixture(scope="module")
def pair(checkpoint):
    style, directory = checkpoint
    hf = transformers.AutoTokenizer.from_pretrained(directory)
    return style, Tokenizer.from_dir(directory), hf


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("add_special_tokens", [True, False])
def test_encode_matches_transformers(pair, text, add_special_tokens):
    _, ours, hf = pair
    expected = hf.encode(text, add_special_tokens=add_special_tokens)
    assert ours.encode(text, add_special_tokens=add_special_tokens) == expected


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("skip_special_tokens", [True, False])
def test_decode_matches_transformers(pair, text, skip_special_tokens):
    _, ours, hf = pair
    ids = hf.encode(text)
    expected = hf.decode(ids, skip_special_tokens=skip_special_tokens)
    assert ours.decode(ids, skip_special_tokens=skip_special_tokens) == expected


def test_llama_style_encode_starts_with_bos(pair):
    style, ours, _ = pair
    if style == "llama":
        assert ours.encode("hi")[0] == ours.bos_token_id == ours.token_to_id("<|begin_of_text|>")
    else:
        assert ours.bos_token_id is None and ours.encode("hi") == ours.encode("hi", False)


def test_vocabulary_and_special_tokens_match_transformers(pair):
    _, ours, hf = pair
    assert ours.vocab_size == len(hf)
    assert ours.eos_token_id == hf.eos_token_id
    assert set(hf.all_special_ids) <= set(ours.all_special_ids)
    ids = list(range(ours.vocab_size))
    assert ours.convert_ids_to_tokens(ids) == hf.convert_ids_to_tokens(ids)
    assert ours.token_to_id("<think>") == hf.convert_tokens_to_ids("<think>")
    assert ours.token_to_id("definitely not a token") is None


@pytest.mark.parametrize("conversation", CONVERSATIONS)
@pytest.mark.parametrize("add_generation_prompt", [True, False])
def test_chat_template_matches_transformers(pair, conversation, add_generation_prompt):
    _, ours, hf = pair
    expected = hf.apply_chat_template(
        conversation, tokenize=False, add_generation_prompt=add_generation_prompt
    )
    assert ours.apply_chat_template(conversation, add_generation_prompt) == expected


def test_template_kwargs_and_tools_match_transformers(tmp_path):
    directory = write_checkpoint_tokenizer(tmp_path, "qwen")
    ours = Tokenizer.from_dir(directory)
    hf = transformers.AutoTokenizer.from_pretrained(directory)
    tools = [{"type": "function", "function": {"name": "météo", "parameters": {"type": "object"}}}]
    conversation = CONVERSATIONS[1]
    for kwargs in ({"enable_thinking": False}, {"enable_thinking": True}, {"tools": tools}):
        expected = hf.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True, **kwargs)
        assert ours.apply_chat_template(conversation, **kwargs) == expected
    assert '"météo"' in ours.apply_chat_template(conversation, tools=tools)  # not \u-escaped


def test_reasoning_content_and_tool_call_messages_render(pair):
    style, ours, hf = pair
    conversation = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]},
        {"role": "assistant", "content": "Sunny.", "reasoning_content": "It is sunny."},
    ]
    if style == "llama":
        conversation = conversation[:1] + conversation[2:]
    expected = hf.apply_chat_template(conversation, tokenize=False, add_generation_prompt=False)
    assert ours.apply_chat_template(conversation, add_generation_prompt=False) == expected


def test_text_parts_become_one_string(pair):
    _, ours, _ = pair
    parts = [{"type": "text", "text": "first"}, {"type": "text", "text": "second"}]
    as_parts = ours.apply_chat_template([{"role": "user", "content": parts}])
    as_string = ours.apply_chat_template([{"role": "user", "content": "first\nsecond"}])
    assert as_parts == as_string


@pytest.mark.parametrize(
    ("messages", "fragment"),
    [
        ([], "non-empty list"),
        ("hello", "non-empty list"),
        (["hello"], "messages[0] must be an object"),
        ([{"content": "hi"}], "messages[0].role"),
        ([{"role": "user", "content": "a"}, {"role": "user"}], "messages[1].content is missing"),
        ([{"role": "user", "content": 3}], "must be a string or a list of text parts"),
        ([{"role": "user", "content": [{"type": "image_url"}]}], "'image_url' part"),
        ([{"role": "user", "content": [{"type": "text", "text": 1}]}], "text only"),
    ],
)
def test_invalid_messages_are_rejected(pair, messages, fragment):
    _, ours, _ = pair
    with pytest.raises(InvalidRequestError, match=fragment.replace("[", r"\[")) as info:
        ours.apply_chat_template(messages)
    assert info.value.param == "messages"


def test_template_raise_exception_becomes_invalid_request(tmp_path):
    ours = Tokenizer.from_dir(write_checkpoint_tokenizer(tmp_path, "llama"))
    with pytest.raises(InvalidRequestError, match="unsupported role tool") as info:
        ours.apply_chat_template([{"role": "tool", "content": "42"}])
    assert info.value.param == "messages"


def test_missing_tokenizer_json_names_the_directory(tmp_path):
    with pytest.raises(ModelLoadError, match=str(tmp_path)):
        Tokenizer.from_dir(tmp_path)


def test_missing_chat_template_is_a_clear_request_error(tmp_path):
    ours = Tokenizer.from_dir(write_checkpoint_tokenizer(tmp_path, with_template=False))
    assert not ours.has_chat_template
    with pytest.raises(InvalidRequestError, match="no chat template"):
        ours.apply_chat_template([{"role": "user", "content": "hi"}])


def test_chat_template_jinja_file_is_read(tmp_path):
    directory = write_checkpoint_tokenizer(tmp_path, "qwen", template_as_file=True)
    assert "chat_template" not in json.loads((directory / "tokenizer_config.json").read_text())
    ours = Tokenizer.from_dir(directory)
    hf = transformers.AutoTokenizer.from_pretrained(directory)
    conversation = CONVERSATIONS[1]
    expected = hf.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    assert ours.apply_chat_template(conversation) == expected


def test_named_templates_pick_default_or_tool_use(tmp_path):
    directory = write_checkpoint_tokenizer(tmp_path, "qwen", named_templates=True)
    ours = Tokenizer.from_dir(directory)
    hf = transformers.AutoTokenizer.from_pretrained(directory)
    conversation = CONVERSATIONS[0]
    tools = [{"name": "f"}]
    for kwargs in ({}, {"tools": tools}):
        expected = hf.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True, **kwargs)
        assert ours.apply_chat_template(conversation, **kwargs) == expected
    assert ours.apply_chat_template(conversation, tools=tools) == 'TOOLS [{"name": "f"}]'


def test_add_bos_token_flag_overrides_the_post_processor(tmp_path):
    without = Tokenizer.from_dir(write_checkpoint_tokenizer(tmp_path / "a", "llama", add_bos_token=False))
    assert without.encode("hi") == without.encode("hi", add_special_tokens=False)
    directory = write_checkpoint_tokenizer(tmp_path / "b", "qwen", add_bos_token=True)
    config = json.loads((directory / "tokenizer_config.json").read_text())
    config["bos_token"] = "<|endoftext|>"
    (directory / "tokenizer_config.json").write_text(json.dumps(config))
    with_bos = Tokenizer.from_dir(directory)
    assert with_bos.encode("hi") == [with_bos.token_to_id("<|endoftext|>")] + with_bos.encode(
        "hi", add_special_tokens=False
    )


def test_broken_files_raise_model_load_error(tmp_path):
    directory = write_checkpoint_tokenizer(tmp_path / "syntax", "qwen")
    config = json.loads((directory / "tokenizer_config.json").read_text())
    config["chat_template"] = "{% for m in messages %}"
    (directory / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="not valid Jinja"):
        Tokenizer.from_dir(directory)
    (directory / "tokenizer_config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="tokenizer_config.json"):
        Tokenizer.from_dir(directory)
    (directory / "tokenizer.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="tokenizer.json"):
        Tokenizer.from_dir(directory)


def test_strftime_now_is_available(tmp_path):
    directory = write_checkpoint_tokenizer(tmp_path, "qwen", with_template=False)
    (directory / "chat_template.jinja").write_text("{{ strftime_now('%Y') }} {{ eos_token }}")
    rendered = Tokenizer.from_dir(directory).apply_chat_template([{"role": "user", "content": ""}])
    year, eos = rendered.split(" ")
    assert year.isdigit() and len(year) == 4 and eos == "<|im_end|>"


def test_block_whitespace_and_none_fields_match_transformers(tmp_path):
    directory = write_checkpoint_tokenizer(tmp_path, "qwen", with_template=False)
    (directory / "chat_template.jinja").write_text(
        "{% for message in messages %}\n"
        "    {% if message.name is defined %}\n"
        "    [{{ message.name }}]\n"
        "    {% endif %}\n"
        "    {{ message.role }}: {{ message.content }}\n"
        "{% endfor %}\n"
    )
    conversation = [
        {"role": "user", "content": "hi", "name": None},
        {"role": "user", "content": "yo", "name": "bob"},
    ]
    hf = transformers.AutoTokenizer.from_pretrained(directory)
    expected = hf.apply_chat_template(conversation, tokenize=False)
    assert Tokenizer.from_dir(directory).apply_chat_template(conversation) == expected
