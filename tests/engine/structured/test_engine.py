"""Constrained answers through the real engine: every output parses (n > 1, sync and async
scheduling, preemption), the thought stays free text, a thinking budget hands over to the
constraint, and a failing constraint ends only its own request."""

import json
import re

import pytest

from ponder import LLM, SamplingParams
from ponder.assets import default_model_dir
from ponder.engine.structured.params import StructuredOutputParams
from ponder.errors import StructuredOutputError
from tests.server.harness import thinking_checkpoint

# Bounded, so that even a random-init model finishes well within max_tokens.
SCHEMA = {
    "type": "object",
    "properties": {
        "ok": {"type": "boolean"},
        "pick": {"enum": ["red", "green", "blue"]},
        "n": {"type": "integer", "minimum": 0, "maximum": 99},
    },
    "required": ["ok", "pick", "n"],
    "additionalProperties": False,
}


def check_schema(text: str) -> None:
    value = json.loads(text)
    assert set(value) == {"ok", "pick", "n"}
    assert isinstance(value["ok"], bool) and value["pick"] in ("red", "green", "blue")
    assert isinstance(value["n"], int) and 0 <= value["n"] <= 99


@pytest.fixture(scope="module")
def tiny(qwen3_ckpt, async_scheduling):
    knobs = dict(block_size=4, kv_cache_memory=1 << 24, max_model_len=256)
    return LLM(str(qwen3_ckpt), async_scheduling=async_scheduling, **knobs)


def test_random_model_outputs_parse_under_n_greater_than_one(tiny):
    params = SamplingParams(
        n=4, temperature=1.0, seed=3, max_tokens=100, structured_outputs=StructuredOutputParams(json=SCHEMA)
    )
    outputs = tiny.generate(["The quick brown fox"], params)
    samples = [c for output in outputs for c in output.outputs]
    assert len(samples) == 4
    for sample in samples:
        assert sample.finish_reason == "stop", sample.text
        check_schema(sample.content)
    assert len({s.text for s in samples}) > 1  # the samples are independent matchers


def test_choice_and_regex(tiny):
    choice = SamplingParams(
        n=3, temperature=1.0, max_tokens=20, structured_outputs=StructuredOutputParams(choice=["yes", "no"])
    )
    pattern = StructuredOutputParams(regex=r"\d{3}-[a-c]{2}")
    regex = SamplingParams(n=3, temperature=1.0, max_tokens=20, structured_outputs=pattern)
    by_choice, by_regex = tiny.generate(["Is it?", "Code:"], [choice, regex])
    assert all(c.content in ("yes", "no") and c.finish_reason == "stop" for c in by_choice.outputs)
    assert all(re.fullmatch(r"\d{3}-[a-c]{2}", c.content) for c in by_regex.outputs)


def test_bad_schema_is_refused_before_anything_runs_and_the_engine_goes_on(tiny):
    bad_schema = StructuredOutputParams(json={"type": "nope"}, param="response_format")
    bad = SamplingParams(structured_outputs=bad_schema)
    with pytest.raises(StructuredOutputError) as info:
        tiny.generate(["hi"], bad)
    assert info.value.param == "response_format"
    (output,) = tiny.generate(["hi"], SamplingParams(max_tokens=4, temperature=0.0))
    assert len(output.outputs[0].token_ids) == 4


def test_outputs_parse_through_preemption(qwen3_ckpt):
    # 20 blocks of 4 tokens for 6 samples of ~40: the scheduler must preempt and recompute;
    # matchers keep their state (the tokens stay), so the answers still parse. The prompts close
    # the thought, so the answer starts at once.
    llm = LLM(str(qwen3_ckpt), block_size=4, num_kv_blocks=20, max_model_len=80)
    params = SamplingParams(
        n=3, temperature=1.0, seed=5, max_tokens=70, structured_outputs=StructuredOutputParams(json=SCHEMA)
    )
    outputs = llm.generate(["The</think>", "A</think>"], params)
    assert llm.engine.stats().num_preemptions > 0
    for sample in (c for output in outputs for c in output.outputs):
        check_schema(sample.content)


def test_thinking_is_free_and_a_spent_budget_hands_over_to_the_constraint(qwen3_ckpt, tmp_path):
    # The template opens <think>: a random model rambles (non-JSON) until the budget closes the
    # thought; from there the answer follows the schema.
    llm = LLM(str(thinking_checkpoint(qwen3_ckpt, tmp_path / "think")), block_size=4, max_model_len=256)
    params = SamplingParams(
        n=4,
        temperature=1.0,
        seed=1,
        max_tokens=100,
        thinking_budget=4,
        structured_outputs=StructuredOutputParams(json=SCHEMA),
    )
    (output,) = llm.chat([{"role": "user", "content": "Pick a colour."}], params)
    close = list(llm.engine.think_markers.close_ids)
    for sample in output.outputs:
        assert sample.num_reasoning_tokens <= 4
        check_schema(sample.content)
    # Some thoughts ran into the budget (the engine appended the closing tokens after the 4th
    # one) and were free text, not JSON.
    forced = [s for s in output.outputs if list(s.token_ids[4 : 4 + len(close)]) == close]
    assert forced and any(s.reasoning.strip() for s in forced)
    for sample in forced:
        with pytest.raises(ValueError):
            json.loads(sample.reasoning)


def test_builtin_model_thinks_in_words_and_answers_in_json():
    llm = LLM(str(default_model_dir()), max_model_len=512)
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    params = SamplingParams(
        n=2,
        temperature=0.7,
        seed=0,
        max_tokens=120,
        thinking_budget=40,
        structured_outputs=StructuredOutputParams(json=schema),
    )
    (output,) = llm.chat([{"role": "user", "content": "What is 12 + 30?"}], params)
    for sample in output.outputs:
        assert sample.num_reasoning_tokens > 0 and sample.reasoning.strip()
        assert sample.finish_reason == "stop"
        assert isinstance(json.loads(sample.content)["answer"], int)


def test_constrained_and_plain_requests_under_speculation(qwen3_ckpt):
    """A batch that mixes a constrained request with a plain one under n-gram speculation: the
    constrained one is never speculated (a grammar mask advances one token at a time) and still
    parses; the plain one gives the same greedy tokens as without speculation."""
    knobs = dict(block_size=4, kv_cache_memory=1 << 24, max_model_len=256)
    plain_prompt = "Let me think step by step. 12 + 30 = 42. 42 - 7 = 35. Let me check: 12 + 30 = 42."
    plain = SamplingParams(temperature=0.0, max_tokens=24, ignore_eos=True)
    constrained = SamplingParams(
        temperature=0.0, max_tokens=100, structured_outputs=StructuredOutputParams(json=SCHEMA)
    )
    expected = LLM(str(qwen3_ckpt), **knobs).generate([plain_prompt], plain)[0].outputs[0].token_ids
    llm = LLM(str(qwen3_ckpt), speculative_method="ngram", num_speculative_tokens=3, **knobs)
    outputs = llm.generate([plain_prompt, "The quick brown fox"], [plain, constrained])
    assert list(outputs[0].outputs[0].token_ids) == list(expected)
    check_schema(outputs[1].outputs[0].content)
