"""The engine's reasoning/content split (engine/output_text.py): decided by token ids, seams
trimmed, markers never in either part, and any token order streams to the one-shot split."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ponder import LLM, SamplingParams
from ponder.engine.detokenizer import IncrementalDetokenizer
from ponder.engine.output_text import OutputText, TextSplit, split_token_ids
from ponder.engine.thinking import ThinkMarkers, ThoughtState
from ponder.engine.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def tokenizer(qwen3_ckpt) -> Tokenizer:
    return Tokenizer.from_dir(qwen3_ckpt)


@pytest.fixture(scope="module")
def markers(tokenizer) -> ThinkMarkers:
    found = ThinkMarkers.from_tokenizer(tokenizer)
    assert found is not None
    return found


def ids(tokenizer: Tokenizer, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False)


def split(tokenizer, markers, text: str, prompt: str = "") -> TextSplit:
    return split_token_ids(tokenizer, markers, ids(tokenizer, prompt), ids(tokenizer, text))


@pytest.mark.parametrize(
    ("prompt", "text", "reasoning", "content"),
    [
        ("", "<think>\nidea\n</think>\n\nanswer", "idea", "answer"),
        ("assistant\n<think>\n", "idea one\n</think>\n\nthe answer", "idea one", "the answer"),
        ("", "plain answer, no thought", "", "plain answer, no thought"),
        ("", "\n\n<think>a</think>b", "a", "b"),
        ("<think>", "still thinking when cut off\n", "still thinking when cut off", ""),
        (
            "<think></think>\n",
            "an answer after a closed prompt thought",
            "",
            "an answer after a closed prompt thought",
        ),
        ("", "<think></think>", "", ""),
        ("", "answer with a trailing space ", "", "answer with a trailing space "),
        ("", "<think>a < b and c </ d</think>ok", "a < b and c </ d", "ok"),
    ],
)
def test_split(tokenizer, markers, prompt, text, reasoning, content):
    assert split(tokenizer, markers, text, prompt) == TextSplit(reasoning, content)


def test_a_second_thought_is_answer_and_marker_text_is_in_raw_only(tokenizer, markers):
    parts = split(tokenizer, markers, "<think>x</think>y <think>z</think>")
    assert parts.reasoning == "x"
    assert "z" in parts.content and "<think>" not in parts.content and "</think>" not in parts.content


def test_a_marker_spelt_as_ordinary_tokens_is_just_text(tokenizer, markers):
    spelt = ids(tokenizer, "<th") + ids(tokenizer, "ink>")  # the characters, not the marker token
    assert markers.start_id not in spelt
    parts = split_token_ids(tokenizer, markers, [], spelt + ids(tokenizer, " hi"))
    assert parts == TextSplit("", "<think> hi")


def test_text_held_back_at_the_budget_stays_in_the_thought(tokenizer, markers):
    """An incomplete character inside the thought, then the forced close: the character's text
    belongs to the thought, not to the answer the close starts."""
    detokenizer = IncrementalDetokenizer(tokenizer, [])
    text = OutputText(detokenizer, markers, in_thought=True)
    emoji = ids(tokenizer, "😀")
    assert len(emoji) > 1  # a byte-level token at a time: held back until complete
    for token_id in ids(tokenizer, "ok ") + emoji[:2]:
        text.append(token_id, in_thought=True)
    assert text.reasoning == "ok"
    for token_id in markers.close_ids:
        text.append(token_id, in_thought=False)
    for token_id in ids(tokenizer, "four"):
        text.append(token_id, in_thought=False)
    text.finish()
    assert text.reasoning.startswith("ok ") and len(text.reasoning) > 3
    assert text.content == "four"
    assert "</think>" in text.raw


# Tokens a random stream is drawn from: both markers, words, whitespace, halves of a character.
POOL_TEXTS = ["<think>", "</think>", "a", " b", "c d", " ", "\n", "\n\n", "<", "</", "think", ">", "😀"]


@settings(max_examples=200, deadline=None)
@given(picks=st.lists(st.integers(min_value=0, max_value=100), max_size=30), opened=st.booleans())
def test_streamed_parts_grow_and_end_as_the_one_shot_split(tokenizer, markers, picks, opened):
    pool = sorted({token for piece in POOL_TEXTS for token in ids(tokenizer, piece)})
    output_ids = [pool[pick % len(pool)] for pick in picks]
    prompt_ids = [markers.start_id] if opened else []
    thought = ThoughtState.after_prompt(prompt_ids, markers)
    text = OutputText(IncrementalDetokenizer(tokenizer, prompt_ids), markers, in_thought=thought.in_thought)
    seen = TextSplit("", "")
    for token_id in output_ids:
        thought.observe(token_id, markers, budget=None)
        text.append(token_id, in_thought=thought.in_thought)
        now = TextSplit(text.reasoning, text.content)
        assert now.reasoning.startswith(seen.reasoning) and now.content.startswith(seen.content)
        seen = now
    text.finish()
    final = TextSplit(text.reasoning, text.content)
    assert final == split_token_ids(tokenizer, markers, prompt_ids, output_ids)
    assert final.reasoning == final.reasoning.strip() and final.content == final.content.lstrip()
    visible = text.raw.replace("<think>", "").replace("</think>", "")
    assert len(final.reasoning) + len(final.content) <= len(visible)


def test_engine_outputs_carry_the_split_and_deltas_add_up(qwen3_ckpt, tmp_path):
    """A template that opens the thought, a budget that closes it: the engine's DELTA parts
    concatenate to its FINAL parts, which hold no marker text."""
    import json
    import shutil

    model = tmp_path / "thinking"
    shutil.copytree(qwen3_ckpt, model)
    config = json.loads((model / "tokenizer_config.json").read_text())
    config["chat_template"] = (
        "{%- for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{%- endfor %}"
        "{%- if add_generation_prompt %}assistant:\n<think>\n{%- endif %}"
    )
    (model / "tokenizer_config.json").write_text(json.dumps(config))
    llm = LLM(str(model), block_size=4, kv_cache_memory=1 << 24, max_model_len=128)
    params = SamplingParams(temperature=0, max_tokens=20, ignore_eos=True, thinking_budget=6)
    [final] = llm.chat([[{"role": "user", "content": "Hi"}]], params)
    completion = final.outputs[0]
    assert completion.num_reasoning_tokens == 6
    assert completion.num_content_tokens == 20 - 6
    assert "</think>" in completion.text
    for part in (completion.reasoning, completion.content):
        assert "<think>" not in part and "</think>" not in part
    assert (completion.reasoning, completion.content) == split_token_ids(
        llm.engine.tokenizer,
        ThinkMarkers.from_tokenizer(llm.engine.tokenizer),
        final.prompt_token_ids,
        completion.token_ids,
    )
