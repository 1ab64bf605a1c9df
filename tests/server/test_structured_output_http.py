"""Structured output over HTTP on a real tiny engine: response_format, guided_*, the Responses
API's text.format, streaming, n > 1, a strategy, a reasoning model whose thought is free text, and
OpenAI-style 400s for bad schemas that leave the engine serving."""

import json
import re

import httpx
import pytest
from openai import BadRequestError, OpenAI

from tests.server.harness import MODEL, real_engine, serve, thinking_checkpoint

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
RESPONSE_FORMAT = {"type": "json_schema", "json_schema": {"name": "pick", "schema": SCHEMA, "strict": True}}
MESSAGES = [{"role": "user", "content": "Pick a colour."}]


def check_schema(text: str) -> None:
    value = json.loads(text)
    assert set(value) == {"ok", "pick", "n"} and value["pick"] in ("red", "green", "blue")
    assert isinstance(value["ok"], bool) and isinstance(value["n"], int)


@pytest.fixture(scope="module")
def server(qwen3_ckpt):
    with serve(real_engine(qwen3_ckpt)) as running:
        yield running


@pytest.fixture(scope="module")
def client(server) -> OpenAI:
    return OpenAI(base_url=f"{server.url}/v1", api_key="unused", timeout=120)


def test_json_schema_with_n_samples_all_parse(client):
    completion = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, n=3, seed=2, max_tokens=120, response_format=RESPONSE_FORMAT
    )
    assert len(completion.choices) == 3
    for choice in completion.choices:
        assert choice.finish_reason == "stop"
        check_schema(choice.message.content)


def test_streamed_json_object_parses_per_choice(client):
    stream = client.chat.completions.create(
        model=MODEL,
        messages=MESSAGES,
        n=2,
        seed=4,
        max_tokens=150,
        stream=True,
        extra_body={"structured_outputs": {"json": SCHEMA}},
    )
    contents = ["", ""]
    finished = [None, None]
    for chunk in stream:
        for choice in chunk.choices:
            contents[choice.index] += choice.delta.content or ""
            finished[choice.index] = choice.finish_reason or finished[choice.index]
    assert finished == ["stop", "stop"]
    for content in contents:
        check_schema(content)


def test_guided_regex_and_choice_on_completions_and_chat(server, client):
    completion = client.completions.create(
        model=MODEL, prompt="Code:", n=3, max_tokens=20, extra_body={"guided_regex": r"[0-9]{3}-[a-c]{2}"}
    )
    assert all(re.fullmatch(r"[0-9]{3}-[a-c]{2}", c.text) for c in completion.choices)
    chat = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, n=3, max_tokens=20, extra_body={"guided_choice": ["yes", "no"]}
    )
    assert all(c.message.content in ("yes", "no") for c in chat.choices)


def test_self_consistency_over_constrained_answers(client):
    completion = client.chat.completions.create(
        model=MODEL,
        messages=MESSAGES,
        temperature=0.9,
        max_tokens=120,
        response_format=RESPONSE_FORMAT,
        extra_body={"reasoning_strategy": {"type": "self_consistency", "n": 3}},
    )
    check_schema(completion.choices[0].message.content)


def test_responses_text_format_json_schema(client):
    response = client.responses.create(
        model=MODEL,
        input="Pick a colour.",
        max_output_tokens=120,
        text={"format": {"type": "json_schema", "name": "pick", "schema": SCHEMA, "strict": True}},
    )
    check_schema(response.output_text)


@pytest.mark.parametrize(
    "extra, param",
    [
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"type": "zzz"}},
                }
            },
            "response_format.json_schema.schema",
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
            "response_format.json_schema.schema",
        ),
        ({"response_format": {"type": "yaml"}}, "response_format"),
        ({"guided_regex": "(unclosed"}, "guided_regex"),
        ({"guided_choice": []}, "guided_choice"),
        ({"guided_regex": "a", "guided_choice": ["a"]}, "guided_choice"),
        ({"structured_outputs": {"xml": "<a/>"}}, "structured_outputs"),
    ],
)
def test_bad_constraints_are_400s_naming_the_field_and_the_engine_goes_on(server, extra, param):
    body = {"model": MODEL, "messages": MESSAGES, "max_tokens": 4, **extra}
    response = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"].startswith(param)
    after = httpx.post(
        f"{server.url}/v1/chat/completions",
        json={"model": MODEL, "messages": MESSAGES, "max_tokens": 3},
        timeout=60,
    )
    assert after.status_code == 200


def test_responses_bad_schema_names_text_format(client):
    with pytest.raises(BadRequestError) as info:
        client.responses.create(
            model=MODEL,
            input="hi",
            text={"format": {"type": "json_schema", "name": "x", "schema": {"type": "zzz"}}},
        )
    assert info.value.body["param"] == "text.format.schema"


def test_reasoning_model_thinks_freely_then_answers_in_json(qwen3_ckpt, tmp_path_factory):
    ckpt = thinking_checkpoint(qwen3_ckpt, tmp_path_factory.mktemp("structured") / "think")
    with serve(real_engine(ckpt)) as thinking_server:
        client = OpenAI(base_url=f"{thinking_server.url}/v1", api_key="unused", timeout=120)
        completion = client.chat.completions.create(
            model=MODEL,
            messages=MESSAGES,
            n=3,
            seed=1,
            max_tokens=150,
            response_format=RESPONSE_FORMAT,
            extra_body={"thinking_budget": 6},
        )
    reasonings = []
    for choice in completion.choices:
        check_schema(choice.message.content)
        reasonings.append(choice.message.reasoning_content or "")
    assert completion.usage.completion_tokens_details.reasoning_tokens > 0
    assert any(r.strip() for r in reasonings)  # the thought was not held to the schema
    for reasoning in reasonings:
        with pytest.raises(ValueError):
            json.loads(reasoning)
