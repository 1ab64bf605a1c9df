"""Tests for incremental detokenization: UTF-8 safety, exactness, and stop strings."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer as BackendTokenizer
from tokenizers import decoders, models

from ponder.engine.detokenizer import IncrementalDetokenizer
from ponder.engine.tokenizer import Tokenizer

from ._sampling_tokenizer import build_backend, byte_token_ids

TOKENIZER = Tokenizer(
    build_backend("qwen"),
    special_tokens={"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
)
PROMPT = TOKENIZER.encode("<|im_start|>user\nDis bonjour 日本<|im_end|>\n<|im_start|>assistant\n")
# Text with many ways to split characters: accents, CJK, emoji with modifiers, flags.
ALPHABET = "ab xyz.,\n" + "éñüß" + "日本語中文" + "😀🚀👍🏽🇫🇷" + "∑√"


def stream(
    token_ids: list[int], prompt: list[int] = PROMPT, **options
) -> tuple[IncrementalDetokenizer, list[str]]:
    """Feed tokens one by one as the engine does; flush at the end unless a stop matched."""
    detokenizer = IncrementalDetokenizer(TOKENIZER, prompt, **options)
    increments = []
    for token_id in token_ids:
        detokenizer.append(token_id)
        increments.append(detokenizer.take_new_text())
        if detokenizer.stop_matched is not None:
            break
    else:
        detokenizer.flush()
        increments.append(detokenizer.take_new_text())
    return detokenizer, increments


def assert_clean_increments(increments: list[str], full_text: str) -> None:
    assert "".join(increments) == full_text
    if "\ufffd" not in full_text:
        assert not any("\ufffd" in piece for piece in increments)


@settings(max_examples=150, deadline=None)
@given(
    token_ids=st.lists(st.integers(0, TOKENIZER.vocab_size - 1), max_size=40),
    skip_special_tokens=st.booleans(),
    with_prompt=st.booleans(),
)
def test_random_ids_stream_to_the_full_decode(token_ids, skip_special_tokens, with_prompt):
    detokenizer, increments = stream(
        token_ids, PROMPT if with_prompt else [], skip_special_tokens=skip_special_tokens
    )
    full_text = TOKENIZER.decode(token_ids, skip_special_tokens=skip_special_tokens)
    assert "".join(increments) == full_text == detokenizer.output_text


@settings(max_examples=150, deadline=None)
@given(text=st.text(alphabet=ALPHABET, max_size=30), split_bytes=st.booleans())
def test_text_never_streams_a_broken_character(text, split_bytes):
    token_ids = byte_token_ids(TOKENIZER, text.encode()) if split_bytes else TOKENIZER.encode(text)
    detokenizer, increments = stream(token_ids)
    assert_clean_increments(increments, text)
    before_flush = increments[:-1]
    assert "".join(before_flush) == text  # complete characters need no flush


def test_a_split_emoji_appears_only_when_complete():
    detokenizer = IncrementalDetokenizer(TOKENIZER, PROMPT)
    pieces = []
    for token_id in byte_token_ids(TOKENIZER, "a😀".encode()):
        detokenizer.append(token_id)
        pieces.append(detokenizer.take_new_text())
    assert pieces == ["a", "", "", "", "😀"]


def test_flush_releases_an_unfinished_character():
    token_ids = byte_token_ids(TOKENIZER, "ok😀".encode())[:-1]
    detokenizer, increments = stream(token_ids)
    assert increments[:-1] == ["o", "k", "", "", ""]
    assert increments[-1] == TOKENIZER.decode(token_ids)[2:] == "\ufffd"


def test_long_output_stays_exact_past_the_window_trim():
    text = "日本語 and émojis 😀 " * 40
    token_ids = byte_token_ids(TOKENIZER, text.encode())
    detokenizer, increments = stream(token_ids)
    assert_clean_increments(increments, text)
    assert len(detokenizer._window_ids) < 100  # the window does not grow with the output


def test_special_tokens_shown_only_when_asked():
    token_ids = TOKENIZER.encode("<think>hm</think>ok<|im_end|>")
    assert "".join(stream(token_ids)[1]) == "<think>hm</think>ok"
    shown = "".join(stream(token_ids, skip_special_tokens=False)[1])
    assert shown == "<think>hm</think>ok<|im_end|>"


def test_stop_string_spanning_tokens_is_cut_and_never_streamed():
    token_ids = byte_token_ids(TOKENIZER, b"The answer: 42. STOP here")
    detokenizer, increments = stream(token_ids, stop=["STOP"])
    assert detokenizer.stop_matched == "STOP"
    assert detokenizer.output_text == "".join(increments) == "The answer: 42. "
    assert not any("S" in piece for piece in increments)


def test_stop_string_is_kept_with_include_stop_str_in_output():
    token_ids = TOKENIZER.encode("First line.\n\nSecond")
    detokenizer, increments = stream(token_ids, stop=["\n\n"], include_stop_str_in_output=True)
    assert detokenizer.stop_matched == "\n\n"
    assert "".join(increments) == detokenizer.output_text == "First line.\n\n"


def test_held_text_is_released_when_the_stop_does_not_complete():
    detokenizer = IncrementalDetokenizer(TOKENIZER, PROMPT, stop=["STOP"])
    for token_id in byte_token_ids(TOKENIZER, b"go ST"):
        detokenizer.append(token_id)
    assert detokenizer.output_text == "go "
    detokenizer.append(TOKENIZER.token_to_id("x"))
    assert detokenizer.output_text == "go STx" and detokenizer.stop_matched is None
    for token_id in byte_token_ids(TOKENIZER, b" STO"):
        detokenizer.append(token_id)
    detokenizer.flush()
    assert detokenizer.output_text == "go STx STO" and detokenizer.stop_matched is None


def test_multiple_stop_strings_earliest_wins():
    token_ids = TOKENIZER.encode("say hello to the world")
    detokenizer, _ = stream(token_ids, stop=["world", "hello"])
    assert detokenizer.stop_matched == "hello"
    assert detokenizer.output_text == "say "


def test_stop_completing_first_wins_within_one_token():
    token_ids = TOKENIZER.encode(" answer")
    assert len(token_ids) == 1  # both stop strings arrive in the same step
    detokenizer, _ = stream(token_ids, stop=["answer", "sw"])
    assert detokenizer.stop_matched == "sw"  # what a character-by-character scan would see
    assert detokenizer.output_text == " an"


def test_stop_inside_multibyte_text():
    token_ids = byte_token_ids(TOKENIZER, "日本語😀中文".encode())
    detokenizer, increments = stream(token_ids, stop=["語😀"])
    assert detokenizer.stop_matched == "語😀"
    assert "".join(increments) == detokenizer.output_text == "日本"


def test_append_after_a_stop_is_ignored():
    detokenizer, _ = stream(TOKENIZER.encode("a b c d"), stop=[" b"])
    detokenizer.append(TOKENIZER.token_to_id("x"))
    detokenizer.flush()
    assert detokenizer.output_text == "a" and detokenizer.take_new_text() == ""


def reference_stop(text: str, stops: list[str]) -> tuple[str | None, int]:
    """Scan the text one character at a time, as a character-by-character stream would."""
    for end in range(1, len(text) + 1):
        matches = [stop for stop in stops if text[:end].endswith(stop)]
        if matches:
            longest = max(matches, key=len)
            return longest, end - len(longest)
    return None, len(text)


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(alphabet="abc 日😀", max_size=25),
    stops=st.lists(st.text(alphabet="abc 日😀", min_size=1, max_size=4), min_size=1, max_size=3),
    split_bytes=st.booleans(),
    include_stop=st.booleans(),
)
def test_stop_strings_match_a_character_by_character_scan(text, stops, split_bytes, include_stop):
    token_ids = byte_token_ids(TOKENIZER, text.encode()) if split_bytes else TOKENIZER.encode(text)
    detokenizer, increments = stream(token_ids, stop=stops, include_stop_str_in_output=include_stop)
    stop, start = reference_stop(text, stops)
    assert detokenizer.stop_matched == stop
    expected = text[: start + len(stop)] if stop and include_stop else text[:start]
    assert "".join(increments) == detokenizer.output_text == expected


@pytest.mark.parametrize("prompt", [[], PROMPT[:1], PROMPT])
def test_prompt_context_does_not_leak_into_the_output(prompt):
    token_ids = TOKENIZER.encode(" leading space kept")
    assert "".join(stream(token_ids, prompt)[1]) == " leading space kept"


def test_prompt_context_keeps_a_sentencepiece_leading_space():
    # SentencePiece-style decoders drop the space of the first token of a text; the output is
    # mid-text, so its first word keeps its space.
    backend = BackendTokenizer(models.WordLevel({"▁Hi": 0, "▁there": 1}, unk_token="▁Hi"))
    backend.decoder = decoders.Metaspace()
    detokenizer = IncrementalDetokenizer(Tokenizer(backend), [0])
    detokenizer.append(1)
    assert detokenizer.output_text == " there"
