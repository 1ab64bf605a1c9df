"""Reasoning with a real engine: thinking budgets leave room for the answer, reasoning_effort,
and the prefix cache across a 5-turn chat whose answers come back without their thinking."""

import httpx
import pytest
from openai import OpenAI

from tests.server.harness import MODEL, real_engine, serve

BUDGET = 5


def client(server) -> OpenAI:
    return OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def ask(server, **fields):
    return client(server).chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "What is 2 + 3?"}],
        temperature=0,
        **fields,
    )


def test_thinking_budget_closes_the_thought_and_the_model_answers(thinking_server):
    free = ask(thinking_server, max_tokens=30, extra_body={"ignore_eos": True})
    budgeted = ask(thinking_server, max_tokens=30, extra_body={"ignore_eos": True, "thinking_budget": BUDGET})
    thinking = budgeted.usage.completion_tokens_details.reasoning_tokens
    assert thinking <= BUDGET
    assert budgeted.usage.completion_tokens == 30
    assert budgeted.choices[0].message.content  # the answer got the rest of max_tokens
    if free.usage.completion_tokens_details.reasoning_tokens > BUDGET:
        # left alone the model kept thinking; the budget cut it at exactly BUDGET tokens
        assert thinking == BUDGET
        assert len(budgeted.choices[0].message.reasoning) < len(free.choices[0].message.reasoning)


def test_streamed_budgeted_answer_comes_after_the_thinking(thinking_server):
    stream = client(thinking_server).chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Hi"}],
        temperature=0,
        max_tokens=25,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"ignore_eos": True, "thinking_budget": BUDGET},
    )
    kinds, usage = [], None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            if getattr(choice.delta, "reasoning", None):
                kinds.append("reasoning")
            if choice.delta.content:
                kinds.append("content")
    assert "content" in kinds and "reasoning" in kinds
    first_answer = kinds.index("content")
    assert "reasoning" not in kinds[first_answer:]
    assert usage.completion_tokens_details.reasoning_tokens <= BUDGET


def test_reasoning_effort_none_closes_the_thought_at_once(thinking_server):
    result = ask(thinking_server, max_tokens=12, reasoning_effort="none", extra_body={"ignore_eos": True})
    assert result.usage.completion_tokens_details.reasoning_tokens <= 1
    assert result.choices[0].message.content


@pytest.fixture(scope="module")
def effort_server(thinking_ckpt):
    with serve(real_engine(thinking_ckpt), effort_budgets={"minimal": 3, "none": 1}) as server:
        yield server


def test_configured_effort_budgets(effort_server):
    result = ask(effort_server, max_tokens=12, reasoning_effort="minimal", extra_body={"ignore_eos": True})
    assert result.usage.completion_tokens_details.reasoning_tokens <= 3
    refused = httpx.post(
        f"{effort_server.url}/v1/chat/completions",
        json={
            "model": MODEL,
            "messages": [{"role": "user", "content": "x"}],
            "reasoning_effort": "high",
        },
    )
    assert refused.status_code == 400 and "minimal, none" in refused.json()["error"]["message"]


def run_five_turn_chat(server, block_size: int) -> list[dict]:
    """Five turns; each answer goes back as content only (what OpenAI clients send)."""
    api = client(server)
    history, turns = [], []
    for turn in range(5):
        history.append({"role": "user", "content": f"Turn {turn}: and what about {turn * 11}?"})
        before = server.engine.stats()
        result = api.chat.completions.create(
            model=MODEL,
            messages=history,
            temperature=0,
            max_tokens=24,
            extra_body={"ignore_eos": True, "thinking_budget": 12},
        )
        after = server.engine.stats()
        history.append({"role": "assistant", "content": result.choices[0].message.content})
        turns.append(
            {
                "prompt_tokens": result.usage.prompt_tokens,
                "cached_tokens": result.usage.prompt_tokens_details.cached_tokens,
                "queries": after.prefix_cache_queries - before.prefix_cache_queries,
                "hits": after.prefix_cache_hits - before.prefix_cache_hits,
            }
        )
    return turns


def test_multi_turn_chat_reuses_the_cached_prefix(thinking_ckpt):
    block_size = 4
    with serve(real_engine(thinking_ckpt, block_size=block_size, max_model_len=512)) as server:
        server.engine = server.app.state.context.engine
        turns = run_five_turn_chat(server, block_size)
    for previous, turn in zip(turns, turns[1:]):
        # Everything up to the previous turn's "<think>\n" is shared (whole blocks of it).
        reusable = (previous["prompt_tokens"] - 2) // block_size * block_size
        assert turn["cached_tokens"] >= reusable, turns
        assert turn["hits"] == turn["cached_tokens"]
    later = turns[1:]
    hit_rate = sum(t["hits"] for t in later) / sum(t["queries"] for t in later)
    overall = sum(t["hits"] for t in turns) / sum(t["queries"] for t in turns)
    print(f"\n5-turn chat, block_size {block_size}: per turn {turns}")
    print(f"prefix-cache hit rate: turns 2-5 {hit_rate:.1%}, all turns {overall:.1%}")
    assert hit_rate > 0.6


def substrings(text: str, length: int) -> list[str]:
    """Printable pieces of `text` with no whitespace and nothing in common with "</think>"."""
    found = (text[i : i + length] for i in range(len(text) - length + 1))
    return [s for s in found if s.isprintable() and not any(c.isspace() or c in "</think>" for c in s)]


def test_stop_strings_apply_to_the_answer_not_the_thought(thinking_server):
    fields = {"max_tokens": 40, "extra_body": {"ignore_eos": True, "thinking_budget": 10}}
    free = ask(thinking_server, **fields).choices[0]
    thought, answer = free.message.reasoning, free.message.content
    in_thought_only = [s for s in substrings(thought, 2) if s not in answer]
    in_both = [s for s in substrings(answer, 1) if s in thought]
    assert in_thought_only and in_both, (thought, answer)
    # A stop string that only the thought contains ends nothing.
    unstopped = ask(thinking_server, stop=in_thought_only[:1], **fields).choices[0]
    assert (unstopped.message.content, unstopped.finish_reason) == (answer, "length")
    # One in the thought and the answer ends the answer at its first occurrence there.
    stop = in_both[0]
    stopped = ask(thinking_server, stop=[stop], **fields).choices[0]
    assert stopped.message.reasoning == thought
    assert stopped.message.content == answer[: answer.find(stop)]
    assert (stopped.finish_reason, stopped.stop_reason) == ("stop", stop)


def test_a_stop_string_inside_the_closing_marker_does_not_end_the_answer(thinking_server):
    fields = {"max_tokens": 40, "extra_body": {"ignore_eos": True, "thinking_budget": 10}}
    free = ask(thinking_server, **fields).choices[0]
    marker_piece = ask(thinking_server, stop=["th"], **fields).choices[0]
    assert marker_piece.message.content == free.message.content.split("th")[0]


def test_responses_api_with_a_real_engine(thinking_server):
    response = client(thinking_server).responses.create(
        model=MODEL,
        input="What is 2 + 3?",
        max_output_tokens=20,
        temperature=0,
        extra_body={"ignore_eos": True, "thinking_budget": BUDGET},
    )
    assert [item.type for item in response.output] == ["reasoning", "message"]
    assert response.status == "incomplete"  # it used all of max_output_tokens
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text and response.output[0].content[0].text
    assert response.usage.output_tokens == 20
    assert response.usage.output_tokens_details.reasoning_tokens <= BUDGET
