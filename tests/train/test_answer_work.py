"""Answers with working (ponder.train.answer_work): replies whose thought is absent or cut short
work the problem out before the box; the box is still what answer extraction reads, and the
engine's reasoning split still puts the whole answer after the thought."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from ponder.assets import BUILTIN_MODEL_DIR
from ponder.engine.output_text import split_token_ids
from ponder.engine.thinking import ThinkMarkers
from ponder.engine.tokenizer import Tokenizer
from ponder.tasks import DIFFICULTIES, FAMILIES, generate
from ponder.tasks.answers import answers_equal, extract_answer
from ponder.train.answer_work import work_lines, working_answer_text
from ponder.train.chat_format import BUDGET_CLOSE_TEXT, IM_END, THINK_END, THINK_START, prompt_text
from ponder.train.config import PRESETS, load_config
from ponder.train.data import IGNORE_INDEX, encode_budget_cut_example, example_stream, example_texts
from ponder.train.tokenizer import load_tokenizer

ITEMS = [
    item for family in FAMILIES for difficulty in DIFFICULTIES for item in generate(family, difficulty, 3)
]


def learned_text(tokenizer, example) -> str:
    ids = [t for t, label in zip(example.input_ids, example.labels, strict=True) if label != IGNORE_INDEX]
    return tokenizer.decode(ids, skip_special_tokens=False)


@pytest.mark.parametrize("item", ITEMS, ids=lambda item: f"{item.family}-{item.difficulty}-{item.id[:6]}")
def test_the_working_answer_extracts_to_the_gold_answer(item) -> None:
    text = working_answer_text(item.solution, item.answer)
    assert answers_equal(extract_answer(text), item.answer)
    assert text.endswith(f"\\boxed{{{item.answer}}}")
    assert text.count("\\boxed{") == 1
    work = text.rsplit("\n", 1)[0]
    assert work and "Result:" not in work and "Check" not in work  # the route, not the check
    assert work.split("\n")[0] == item.solution.split("\n")[0]


def test_work_lines_stop_at_the_result_and_a_stated_result_needs_no_working() -> None:
    assert work_lines("2 + 3\n2 + 3 = 5\nResult: 5\nCheck:\n3 + 2 = 5\nAnswer: 5") == ["2 + 3", "2 + 3 = 5"]
    assert working_answer_text("a\nResult: 5\nAnswer: 5", "5", seen_thought="<think>\na\nResult: 5\n") == (
        "\\boxed{5}"
    )
    assert (
        working_answer_text("a\nResult: 5\nAnswer: 5", "5", seen_thought="<think>\na\nRes") == "a\n\\boxed{5}"
    )


def test_thinking_off_examples_answer_with_working_and_thinking_on_ones_do_not_change() -> None:
    item = generate("arithmetic", "easy", 1)[0]
    prompt, completion = example_texts(item, thinking=False, working=True)
    assert prompt == prompt_text(item.question, enable_thinking=False)
    assert completion == working_answer_text(item.solution, item.answer) + IM_END
    assert "\n" in completion and completion.startswith(item.solution.split("\n")[0])
    assert example_texts(item, thinking=False) == (prompt, f"\\boxed{{{item.answer}}}{IM_END}")
    assert example_texts(item, working=True) == example_texts(item)


def test_the_working_preset_gives_direct_answers_working_on_every_difficulty() -> None:
    tokenizer = load_tokenizer(BUILTIN_MODEL_DIR)
    config = replace(
        load_config("working"), no_think_fraction=1.0, budget_cut_fraction=0.0, probe_fraction=0.0,
        paraphrase_fraction=0.0, plain_fraction=0.0,
    )  # fmt: skip
    stream = example_stream(config, tokenizer, random.Random(0))
    for _ in range(64):
        example = next(stream)
        text = tokenizer.decode(example.input_ids, skip_special_tokens=False)
        answer = learned_text(tokenizer, example)
        assert text.count(f"{THINK_START}\n\n{THINK_END}\n\n") == 1  # the thinking-off prompt
        assert not answer.startswith(THINK_START) and "\n\\boxed{" in answer and answer.endswith(IM_END)
    robust = replace(
        load_config("robust"), no_think_fraction=1.0, budget_cut_fraction=0.0, probe_fraction=0.0
    )
    first = learned_text(tokenizer, next(example_stream(robust, tokenizer, random.Random(1))))
    assert first.startswith(THINK_START) or first.startswith("\\boxed{")  # the robust preset as before


def test_budget_cut_examples_work_it_out_unless_the_thought_had_the_result() -> None:
    tokenizer = load_tokenizer(BUILTIN_MODEL_DIR)
    item = generate("word_problems", "easy", 1)[0]
    kinds = set()
    for seed in range(40):
        example = encode_budget_cut_example(tokenizer, item, random.Random(seed), working=True)
        text = tokenizer.decode(example.input_ids, skip_special_tokens=False)
        answer = learned_text(tokenizer, example)
        assert text.endswith(BUDGET_CLOSE_TEXT + answer) and text.count(THINK_END) == 1
        assert answers_equal(extract_answer(answer), item.answer)
        stated = f"Result: {item.answer}\n" in text.split(BUDGET_CLOSE_TEXT)[0]
        assert (answer == f"\\boxed{{{item.answer}}}{IM_END}") == stated
        kinds.add(stated)
    assert kinds == {True, False}


def test_the_engine_split_puts_the_working_in_the_answer_and_extraction_reads_the_box() -> None:
    tokenizer = Tokenizer.from_dir(BUILTIN_MODEL_DIR)
    markers = ThinkMarkers.from_tokenizer(tokenizer)
    assert markers is not None
    item = generate("arithmetic", "medium", 1)[0]
    answer = working_answer_text(item.solution, item.answer)

    def ids(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False)

    # effort none: the prompt closes the thought; everything generated is the answer
    split = split_token_ids(
        tokenizer, markers, ids(prompt_text(item.question, enable_thinking=False)), ids(answer)
    )
    assert split.reasoning == "" and split.content == answer
    assert answers_equal(extract_answer(split.content, split.reasoning), item.answer)
    # a thinking budget: the cut thought is reasoning, the working after the close is the answer
    thought = "\n".join(item.solution.split("\n")[:2])
    generated = ids(f"{THINK_START}\n{thought}{BUDGET_CLOSE_TEXT}{answer}")
    split = split_token_ids(tokenizer, markers, ids(prompt_text(item.question)), generated)
    assert "Answer now." in split.reasoning and split.content == answer
    assert answers_equal(extract_answer(split.content, split.reasoning), item.answer)


def test_the_working_preset_fine_tunes_the_shipped_model() -> None:
    config = load_config("working")
    assert config.answer_working and config.init_from == str(BUILTIN_MODEL_DIR)
    assert config.shortcut_difficulties == DIFFICULTIES and not PRESETS["robust"].answer_working
