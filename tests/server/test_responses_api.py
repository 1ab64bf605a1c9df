"""/v1/responses with the openai client: a reasoning item then the message, whole or streamed;
input items (messages, reasoning sent back, function calls) reach the template."""

import httpx
import pytest
from openai import OpenAI

from ponder.engine.tokenizer import Tokenizer
from tests.server.harness import MODEL, ScriptedEngine, serve
from tests.server.test_reasoning_http import NUM_TOKENS, SCRIPT


@pytest.fixture(scope="module")
def scripted(qwen3_ckpt):
    engine = ScriptedEngine(Tokenizer.from_dir(qwen3_ckpt), SCRIPT)
    with serve(engine) as server:
        yield OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0), engine, server


def test_response_has_a_reasoning_item_then_the_message(scripted):
    client, engine, _ = scripted
    response = client.responses.create(
        model=MODEL,
        input="2+2?",
        instructions="be brief",
        reasoning={"effort": "low"},
        max_output_tokens=50,
    )
    assert response.status == "completed" and response.object == "response"
    reasoning, message = response.output
    assert reasoning.type == "reasoning" and reasoning.content[0].text == "Let me see."
    assert message.type == "message" and response.output_text == "The answer is 4."
    assert response.usage.output_tokens == NUM_TOKENS
    assert response.usage.output_tokens_details.reasoning_tokens == 7
    request = engine.requests[-1]
    assert request.params.thinking_budget == 512 and request.params.max_tokens == 50
    assert request.prompt["prompt"].startswith("<|im_start|>system\nbe brief<|im_end|>")


def test_streamed_response_events(scripted):
    client, _, _ = scripted
    events = list(client.responses.create(model=MODEL, input="2+2?", stream=True))
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    thinking = "".join(e.delta for e in events if e.type == "response.reasoning_text.delta")
    answer = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert (thinking, answer) == ("Let me see.", "The answer is 4.")
    assert kinds.index("response.reasoning_text.done") < kinds.index("response.output_text.delta")
    final = events[-1].response
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.output_text == "The answer is 4."
    assert final.usage.output_tokens_details.reasoning_tokens == 7


def test_input_items_become_chat_messages(scripted):
    client, engine, _ = scripted
    client.responses.create(
        model=MODEL,
        input=[
            {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [],
                "content": [{"type": "reasoning_text", "text": "greet back"}],
            },
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "hello"}],
            },
            {"type": "function_call", "call_id": "c1", "name": "add", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "5"},
        ],
    )
    prompt = engine.requests[-1].prompt["prompt"]
    assert "<|im_start|>user\nhi<|im_end|>" in prompt
    assert "<|im_start|>assistant\nhello<|im_end|>" in prompt
    assert "<|im_start|>tool\n5<|im_end|>" in prompt


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x", "previous_response_id": "resp_1"}, "previous_response_id"),
        ({"input": [{"type": "image", "url": "x"}]}, "input"),
        ({"input": [{"role": "wizard", "content": "x"}]}, "input"),
        ({"input": [{"role": "user", "content": [{"type": "input_image"}]}]}, "input"),
        ({"input": "x", "text": {"format": {"type": "json_schema"}}}, "text.format.schema"),
        ({"input": "x", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
        ({"input": "x", "bogus": 1}, "bogus"),
        ({"input": 5}, "input"),
    ],
)
def test_invalid_responses_requests_get_400(scripted, body, param):
    _, _, server = scripted
    response = httpx.post(f"{server.url}/v1/responses", json={"model": MODEL, **body})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
