"""The built-in tokenizer: per-digit numbers, single-token markers, HF loading and chat template."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

from ponder.tasks import generate
from ponder.train.chat_format import completion_text, prompt_text
from ponder.train.tokenizer import load_tokenizer, special_token_ids


def test_files_and_special_tokens(task_tokenizer_dir: Path) -> None:
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        assert (task_tokenizer_dir / name).is_file()
    config = json.loads((task_tokenizer_dir / "tokenizer_config.json").read_text())
    assert config["eos_token"] == "<|im_end|>"
    ids = special_token_ids(load_tokenizer(task_tokenizer_dir))
    assert len(set(ids.values())) == 5


def test_no_token_holds_two_digits(task_tokenizer_dir: Path) -> None:
    vocab = load_tokenizer(task_tokenizer_dir).get_vocab()
    assert all(sum(char.isdigit() for char in token) <= 1 for token in vocab)
    tokenizer = load_tokenizer(task_tokenizer_dir)
    pieces = tokenizer.encode("x = 12345", add_special_tokens=False).tokens
    assert [piece.lstrip("Ġ") for piece in pieces[-5:]] == list("12345")


def test_markers_are_single_tokens(task_tokenizer_dir: Path) -> None:
    tokenizer = load_tokenizer(task_tokenizer_dir)
    text = "<|im_start|>assistant\n<think>\nhm\n</think>\n\n\\boxed{4}<|im_end|>"
    tokens = tokenizer.encode(text, add_special_tokens=False).tokens
    for marker in ("<|im_start|>", "<think>", "</think>", "<|im_end|>"):
        assert marker in tokens


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=80))
def test_round_trip_of_any_text(task_tokenizer_dir: Path, text: str) -> None:
    tokenizer = load_tokenizer(task_tokenizer_dir)
    assert tokenizer.decode(tokenizer.encode(text).ids, skip_special_tokens=False) == text


def test_round_trip_of_task_text(task_tokenizer_dir: Path) -> None:
    tokenizer = load_tokenizer(task_tokenizer_dir)
    for item in generate("boxes", "hard", 3) + generate("arithmetic", "hard", 3):
        text = prompt_text(item.question) + completion_text(item.solution, item.answer)
        assert tokenizer.decode(tokenizer.encode(text).ids, skip_special_tokens=False) == text


@pytest.fixture(scope="module")
def hf_tokenizer(task_tokenizer_dir: Path):
    return AutoTokenizer.from_pretrained(str(task_tokenizer_dir))


def test_transformers_loads_it(hf_tokenizer) -> None:
    assert hf_tokenizer.eos_token == "<|im_end|>"
    assert hf_tokenizer.pad_token == "<|endoftext|>"
    assert hf_tokenizer.convert_tokens_to_ids("<think>") != hf_tokenizer.unk_token_id
    decoded = hf_tokenizer.decode(hf_tokenizer.encode("<think>\nok\n</think>"), skip_special_tokens=True)
    assert "<think>" in decoded and "</think>" in decoded  # kept for the reasoning parser


def test_generation_prompt_matches_prompt_text(hf_tokenizer) -> None:
    messages = [{"role": "user", "content": "What is 2 + 3?"}]
    rendered = hf_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n"
    assert rendered == prompt_text("What is 2 + 3?")
    no_think = hf_tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, enable_thinking=False
    )
    assert no_think == rendered + "<think>\n\n</think>\n\n"
    assert no_think == prompt_text("What is 2 + 3?", enable_thinking=False)


def test_assistant_turn_matches_completion_text(hf_tokenizer) -> None:
    completion = completion_text("2 + 3 = 5\nAnswer: 5", "5")
    messages = [
        {"role": "user", "content": "What is 2 + 3?"},
        {"role": "assistant", "content": completion.removesuffix("<|im_end|>")},
    ]
    rendered = hf_tokenizer.apply_chat_template(messages, tokenize=False)
    assert rendered == prompt_text("What is 2 + 3?") + completion + "\n"
    with_field = [
        messages[0],
        {"role": "assistant", "content": "\\boxed{5}", "reasoning_content": "2 + 3 = 5\nAnswer: 5"},
    ]
    assert hf_tokenizer.apply_chat_template(with_field, tokenize=False) == rendered


def test_earlier_turns_drop_their_reasoning(hf_tokenizer) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "1 + 1?"},
        {"role": "assistant", "content": "<think>\nadd\n</think>\n\n\\boxed{2}"},
        {"role": "user", "content": "2 + 2?"},
    ]
    rendered = hf_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\n1 + 1?<|im_end|>\n"
        "<|im_start|>assistant\n\\boxed{2}<|im_end|>\n"
        "<|im_start|>user\n2 + 2?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
