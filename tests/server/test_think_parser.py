"""The think parser: reasoning/content split, markers cut across chunks, any chunking agrees."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ponder.reasoning.think_parser import (
    ThinkParser,
    ThinkSplit,
    prompt_opens_thought,
    split_reasoning,
)


def stream(chunks: list[str], in_thought: bool = False) -> ThinkSplit:
    parser = ThinkParser(in_thought=in_thought)
    total = ThinkSplit()
    for chunk in chunks:
        total += parser.feed(chunk)
    total += parser.finish()
    return total


@pytest.mark.parametrize(
    ("text", "in_thought", "reasoning", "content"),
    [
        ("<think>\nidea\n</think>\n\nanswer", False, "idea", "answer"),
        ("idea one\n</think>\n\nthe answer", True, "idea one", "the answer"),
        ("plain answer, no thought", False, "", "plain answer, no thought"),
        ("\n\n<think>a</think>b", False, "a", "b"),
        ("still thinking when cut off", True, "still thinking when cut off", ""),
        ("<think>x</think>y <think>z</think>", False, "x", "y <think>z</think>"),
        ("lead <think>x</think>tail", False, "x", "lead tail"),
        ("a < b and c </ d", True, "a < b and c </ d", ""),
        ("<think></think>", False, "", ""),
        ("answer with a trailing space ", False, "", "answer with a trailing space "),
    ],
)
def test_split(text, in_thought, reasoning, content):
    assert split_reasoning(text, in_thought) == ThinkSplit(reasoning, content)


def test_marker_split_across_chunks_never_leaks():
    parser = ThinkParser()
    pieces = [parser.feed(c) for c in ["<th", "ink>\nfirst ", "idea\n</", "th", "ink>\n", "\nok"]]
    assert [p.content for p in pieces] == ["", "", "", "", "", "ok"]
    assert "".join(p.reasoning for p in pieces) == "first idea"
    assert not any("<" in p.reasoning or "<" in p.content for p in pieces)
    assert parser.finish() == ThinkSplit()


def test_partial_marker_that_turns_out_to_be_text_is_released():
    parser = ThinkParser(in_thought=True)
    assert parser.feed("x </th") == ThinkSplit("x", "")
    assert parser.feed("ere") == ThinkSplit(" </there", "")
    assert parser.finish() == ThinkSplit()


def test_prompt_opens_thought():
    assert prompt_opens_thought("<|im_start|>assistant\n<think>\n")
    assert not prompt_opens_thought("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert not prompt_opens_thought("<|im_start|>assistant\n")
    assert not prompt_opens_thought(None)
    assert ThinkParser.for_prompt("...<think>\n").in_thought


ALPHABET = st.sampled_from(["<think>", "</think>", "<", "</", "think", ">", "a", "b c", " ", "\n"])


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(ALPHABET, max_size=14),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=8),
    in_thought=st.booleans(),
)
def test_any_chunking_gives_the_one_shot_split(parts, cuts, in_thought):
    text = "".join(parts)
    bounds = sorted({min(c, len(text)) for c in cuts} | {0, len(text)})
    chunks = [text[a:b] for a, b in zip(bounds, bounds[1:])]
    assert stream(chunks, in_thought) == split_reasoning(text, in_thought)
    char_by_char = stream(list(text), in_thought)
    assert char_by_char == split_reasoning(text, in_thought)
