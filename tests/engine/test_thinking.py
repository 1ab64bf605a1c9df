"""Thought tracking: reasoning-token counts and a thinking budget that the engine enforces."""

import pytest

from ponder import LLM, InvalidRequestError, SamplingParams
from ponder.engine.detokenizer import IncrementalDetokenizer
from ponder.engine.thinking import ThinkMarkers, ThoughtState

MARKERS = ThinkMarkers(start_id=10, end_id=11, close_ids=(3, 11, 4))


def test_thought_state_counts_and_closes_at_the_budget():
    state = ThoughtState.after_prompt([1, 2, 10], MARKERS)  # the template opened the thought
    assert state.in_thought
    assert [state.observe(t, MARKERS, budget=3) for t in (5, 6)] == [(), ()]
    assert state.observe(7, MARKERS, budget=3) == (3, 11, 4)
    assert not state.in_thought and state.closed and state.num_reasoning_tokens == 3
    assert state.observe(10, MARKERS, budget=3) == ()  # a later <think> is just text
    assert state.num_reasoning_tokens == 3


def test_model_closing_its_own_thought_counts_the_marker():
    state = ThoughtState.after_prompt([1, 2], MARKERS)
    assert not state.in_thought
    for token in (10, 5, 11, 6, 7):
        assert state.observe(token, MARKERS, budget=None) == ()
    assert state.num_reasoning_tokens == 3 and state.closed


def test_stop_strings_are_suspended_inside_the_thought(qwen3_ckpt):
    from ponder.engine.tokenizer import Tokenizer

    tokenizer = Tokenizer.from_dir(qwen3_ckpt)
    ids = tokenizer.encode("think hard then stop here", add_special_tokens=False)
    detok = IncrementalDetokenizer(tokenizer, [], stop=["stop"])
    detok.stops_enabled = False
    for token in ids:
        detok.append(token)
    assert detok.stop_matched is None and detok.output_text == "think hard then stop here"
    detok.stops_enabled = True
    for token in tokenizer.encode(" and stop now", add_special_tokens=False):
        detok.append(token)
    assert detok.stop_matched == "stop"
    assert detok.output_text == "think hard then stop here and "


@pytest.fixture(scope="module")
def llm(qwen3_ckpt, async_scheduling):
    knobs = dict(block_size=4, kv_cache_memory=1 << 24, max_model_len=256)
    return LLM(str(qwen3_ckpt), async_scheduling=async_scheduling, **knobs)


def thinking_prompt(llm) -> list[int]:
    tokenizer = llm.get_tokenizer()
    text = "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n<think>\n"
    return tokenizer.encode(text, add_special_tokens=False)


def test_thinking_budget_closes_the_thought_then_the_model_answers(llm):
    markers = llm.engine.think_markers
    prompt = {"prompt_token_ids": thinking_prompt(llm)}
    free = llm.generate(prompt, SamplingParams(temperature=0, max_tokens=40, ignore_eos=True))[0]
    budget = 6
    params = SamplingParams(temperature=0, max_tokens=40, ignore_eos=True, thinking_budget=budget)
    out = llm.generate(prompt, params)[0].outputs[0]
    assert out.num_reasoning_tokens <= budget
    if markers.end_id not in free.outputs[0].token_ids[:budget]:
        # the model would have kept thinking: the engine closed the thought for it
        assert out.num_reasoning_tokens == budget
        assert out.token_ids[:budget] == free.outputs[0].token_ids[:budget]
        assert tuple(out.token_ids[budget : budget + len(markers.close_ids)]) == markers.close_ids
        assert "</think>" in out.text
        assert len(out.token_ids) == 40  # and then it went on answering


def test_thinking_budget_needs_think_markers_and_a_positive_value(llm):
    with pytest.raises(InvalidRequestError) as info:
        SamplingParams(thinking_budget=0)
    assert info.value.param == "thinking_budget"
    llm.engine.think_markers, saved = None, llm.engine.think_markers
    try:
        with pytest.raises(InvalidRequestError, match="reasoning model"):
            llm.generate(["Hello"], SamplingParams(thinking_budget=4))
    finally:
        llm.engine.think_markers = saved


def test_a_model_may_name_its_own_budget_close():
    markers = ThinkMarkers(start_id=10, end_id=11, close_ids=(3, 11, 4), budget_close_ids=(7, 8, 11, 4))
    state = ThoughtState.after_prompt([1, 10], markers)
    assert state.observe(5, markers, budget=2) == ()
    assert state.observe(6, markers, budget=2) == (7, 8, 11, 4)  # the budget's close, not the probe's
    assert markers.forced_close_ids == (7, 8, 11, 4) and MARKERS.forced_close_ids == MARKERS.close_ids


def test_budget_close_from_the_tokenizer_config_and_its_text_is_thought(qwen3_ckpt, tmp_path):
    import json
    import shutil

    model = tmp_path / "model"
    shutil.copytree(qwen3_ckpt, model)
    config = json.loads((model / "tokenizer_config.json").read_text())
    config["thinking_budget_close"] = "\nAnswer now.\n</think>\n\n"
    (model / "tokenizer_config.json").write_text(json.dumps(config))
    llm = LLM(str(model), block_size=4, kv_cache_memory=1 << 24, max_model_len=256)
    markers = llm.engine.think_markers
    assert markers.budget_close_ids and markers.budget_close_ids != markers.close_ids
    params = SamplingParams(temperature=0, max_tokens=30, ignore_eos=True, thinking_budget=4)
    out = llm.generate({"prompt_token_ids": thinking_prompt(llm)}, params)[0].outputs[0]
    assert markers.end_id not in out.token_ids[:4]  # (the random model keeps thinking)
    assert tuple(out.token_ids[4 : 4 + len(markers.budget_close_ids)]) == markers.budget_close_ids
    assert out.reasoning.endswith("Answer now.") and "Answer now." not in out.content
