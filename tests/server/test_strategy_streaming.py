"""reasoning_strategy with a slow scripted engine: streamed chat and completions report progress
while the branches run and then the decided answer (the openai client parses it all); closing
the stream aborts the branches; /v1/responses runs strategies, whole or streamed."""

import time

import httpx
import pytest
from openai import OpenAI

from ponder.engine.tokenizer import Tokenizer
from tests.server.harness import MODEL, ScriptedEngine, serve
from tests.server.test_reasoning_http import NUM_TOKENS, SCRIPT, sse_chunks

STRATEGY = {"type": "self_consistency", "n": 3}
DELAY_S = 0.2  # per scripted step: a run lasts 1.2 s, so progress ticks (0.5 s) fall inside it
DONE = {
    "branches_running": 0,
    "branches_finished": 3,
    "branches_stopped": 0,
    "generated_tokens": 3 * NUM_TOKENS,
    "leading_answer": "4",
    "leading_share": 1.0,
}


@pytest.fixture(scope="module")
def slow(qwen3_ckpt):
    engine = ScriptedEngine(Tokenizer.from_dir(qwen3_ckpt), SCRIPT, delay_s=DELAY_S)
    with serve(engine) as server:
        yield OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0), engine, server


def chat_body(**extra) -> dict:
    messages = [{"role": "user", "content": "2+2?"}]
    return {"model": MODEL, "messages": messages, "temperature": 0.8, "reasoning_strategy": STRATEGY, **extra}


def test_streamed_chat_strategy_reports_progress_then_the_answer(slow):
    client, _, _ = slow
    body = chat_body(stream=True, stream_options={"include_usage": True})
    strategy = body.pop("reasoning_strategy")
    chunks = list(client.chat.completions.create(**body, extra_body={"reasoning_strategy": strategy}))
    with_choice = [chunk for chunk in chunks if chunk.choices]
    assert with_choice[0].choices[0].delta.role == "assistant"
    progress = [
        (position, chunk.choices[0].strategy_progress)
        for position, chunk in enumerate(with_choice)
        if getattr(chunk.choices[0], "strategy_progress", None) is not None
    ]
    assert len(progress) >= 2  # at least one while the branches run, and one at the end
    assert progress[0][1]["branches_running"] == 3 and progress[0][1]["branches_finished"] == 0
    assert progress[-1][1] == DONE
    assert all(with_choice[position].choices[0].delta.content is None for position, _ in progress)
    first_text = next(i for i, chunk in enumerate(with_choice) if chunk.choices[0].delta.content)
    assert progress[-1][0] < first_text
    deltas = [chunk.choices[0].delta for chunk in with_choice]
    assert "".join(d.content or "" for d in deltas) == "The answer is 4."
    assert "".join(getattr(d, "reasoning", None) or "" for d in deltas) == "Let me see."
    last = with_choice[-1].choices[0]
    assert last.finish_reason == "stop" and last.strategy["answer"] == "4"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 3 * NUM_TOKENS


def test_streamed_completions_report_progress_per_prompt(slow):
    _, _, server = slow
    body = {
        "model": MODEL,
        "prompt": ["2+2?", "3+1?"],
        "temperature": 0.8,
        "stream": True,
        "stream_options": {"continuous_usage_stats": True},
        "reasoning_strategy": STRATEGY,
    }
    with httpx.stream("POST", f"{server.url}/v1/completions", json=body) as response:
        assert response.status_code == 200
        chunks = sse_chunks(response)
    progress = [chunk for chunk in chunks if "strategy_progress" in chunk["choices"][0]]
    assert progress and all(len(chunk["choices"]) == 2 for chunk in progress)
    assert all(choice["text"] == "" for chunk in progress for choice in chunk["choices"])
    assert [choice["strategy_progress"] for choice in progress[-1]["choices"]] == [DONE, DONE]
    assert progress[-1]["usage"]["completion_tokens"] == 2 * 3 * NUM_TOKENS
    answers = [chunk["choices"][0] for chunk in chunks if "strategy" in chunk["choices"][0]]
    assert [choice["index"] for choice in answers] == [0, 1]


def test_closing_a_progress_stream_aborts_every_branch(slow):
    _, engine, server = slow
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=chat_body(stream=True)) as response:
        for line in response.iter_lines():
            if "strategy_progress" in line:
                break  # the run is under way: hang up
    request = engine.requests[-1]
    deadline = time.monotonic() + 5
    while not request.aborted and time.monotonic() < deadline:
        time.sleep(0.02)
    assert request.aborted and request.params.n == 3


def test_responses_run_a_strategy(slow):
    client, engine, _ = slow
    response = client.responses.create(
        model=MODEL, input="2+2?", temperature=0.8, extra_body={"reasoning_strategy": STRATEGY}
    )
    assert engine.requests[-1].params.n == 3  # one request, its three branches share the prompt
    reasoning, message = response.output
    assert reasoning.type == "reasoning" and reasoning.content[0].text == "Let me see."
    assert message.type == "message" and response.output_text == "The answer is 4."
    assert response.status == "completed"
    assert response.strategy["answer"] == "4" and response.strategy["usage"]["num_branches"] == 3
    assert response.usage.output_tokens == 3 * NUM_TOKENS
    assert response.usage.output_tokens_details.reasoning_tokens == 3 * 7


def test_streamed_responses_strategy_sends_progress_then_the_answer_events(slow):
    client, _, _ = slow
    events = list(
        client.responses.create(
            model=MODEL,
            input="2+2?",
            temperature=0.8,
            stream=True,
            extra_body={"reasoning_strategy": STRATEGY},
        )
    )
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert [event.sequence_number for event in events] == list(range(len(events)))
    progress = [
        (position, event.response.strategy_progress)
        for position, event in enumerate(events)
        if event.type == "response.in_progress" and getattr(event.response, "strategy_progress", None)
    ]
    assert len(progress) >= 2 and progress[-1][1] == DONE
    assert progress[-1][0] < kinds.index("response.output_item.added")
    thinking = "".join(e.delta for e in events if e.type == "response.reasoning_text.delta")
    answer = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert (thinking, answer) == ("Let me see.", "The answer is 4.")
    final = events[-1].response
    assert final.output_text == "The answer is 4." and final.strategy["answer"] == "4"
    assert final.usage.output_tokens == 3 * NUM_TOKENS
    # The SDK's accumulating stream helper takes the repeated in_progress events too.
    with client.responses.stream(
        model=MODEL, input="2+2?", temperature=0.8, extra_body={"reasoning_strategy": STRATEGY}
    ) as stream:
        assert stream.get_final_response().output_text == "The answer is 4."


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"reasoning_strategy": {"type": "self_consistency", "n": 0}}, "reasoning_strategy.n"),
        ({"reasoning_strategy": {"type": "majority"}}, "reasoning_strategy.type"),
        ({"reasoning_strategy": {"type": "self_consistency", "branches": 2}}, "reasoning_strategy.branches"),
        ({"reasoning_strategy": 7}, "reasoning_strategy"),
        ({"reasoning_strategy": "self_consistency", "temperature": 0}, "temperature"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_invalid_responses_strategy_is_400_naming_the_field(slow, extra, param, stream):
    _, _, server = slow
    body = {"model": MODEL, "input": "2+2?", "stream": stream, **extra}
    response = httpx.post(f"{server.url}/v1/responses", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
