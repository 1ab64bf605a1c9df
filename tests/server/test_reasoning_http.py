"""Reasoning over HTTP with a scripted engine: the engine's reasoning/content split reaches the
reasoning and reasoning_content fields, include_reasoning=false, reasoning_tokens in usage.
(How the engine splits, markers and seams included: tests/engine/test_output_text.py.)"""

import json

import httpx
import pytest
from openai import OpenAI

from ponder.engine.tokenizer import Tokenizer
from tests.server.harness import MODEL, ScriptedEngine, Step, serve

# "<think>\nLet me see.\n</think>\n\nThe answer is 4." as the engine streams it: the markers'
# text is in `text` only, seam whitespace is in neither part.
SCRIPT = [
    Step("<think>", reasoning_total=1),
    Step("\nLet me", reasoning="Let me", reasoning_total=3),
    Step(" see.\n", reasoning=" see.", reasoning_total=6),
    Step("</think>\n", reasoning_total=7),
    Step("\nThe answer", 2, content="The answer", reasoning_total=7),
    Step(" is 4.", 2, content=" is 4.", reasoning_total=7),
]
NUM_TOKENS = sum(step.num_tokens for step in SCRIPT)


@pytest.fixture(scope="module")
def scripted(qwen3_ckpt):
    engine = ScriptedEngine(Tokenizer.from_dir(qwen3_ckpt), SCRIPT)
    with serve(engine) as server:
        yield server, engine


def chat_body(**extra) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": "2+2?"}], **extra}


def sse_chunks(response: httpx.Response) -> list[dict]:
    events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    return [json.loads(event) for event in events[:-1]]


def test_stream_sends_reasoning_and_content_deltas(scripted):
    server, _ = scripted
    body = chat_body(stream=True, stream_options={"include_usage": True})
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        chunks = sse_chunks(response)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    reasoning = "".join(d.get("reasoning", "") for d in deltas)
    content = "".join(d.get("content", "") for d in deltas)
    assert reasoning == "Let me see."
    assert content == "The answer is 4."
    assert all(d.get("reasoning") == d.get("reasoning_content") for d in deltas)
    assert not any("<" in d.get("reasoning", "") + d.get("content", "") for d in deltas)
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    usage = chunks[-1]["usage"]
    assert chunks[-1]["choices"] == []
    assert usage["completion_tokens"] == NUM_TOKENS
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 7
    assert all(c["usage"] is None for c in chunks[:-1])


def test_non_streaming_message_has_reasoning_and_usage(scripted):
    server, _ = scripted
    client = OpenAI(base_url=f"{server.url}/v1", api_key="unused")
    completion = client.chat.completions.create(**chat_body(n=2))
    for choice in completion.choices:
        assert choice.message.content == "The answer is 4."
        assert choice.message.reasoning == "Let me see."
        assert choice.message.reasoning_content == "Let me see."
    assert completion.usage.completion_tokens == 2 * NUM_TOKENS
    assert completion.usage.completion_tokens_details.reasoning_tokens == 14


def test_include_reasoning_false_omits_the_thinking(scripted):
    server, _ = scripted
    response = httpx.post(f"{server.url}/v1/chat/completions", json=chat_body(include_reasoning=False))
    message = response.json()["choices"][0]["message"]
    assert message["content"] == "The answer is 4."
    assert "reasoning" not in message and "reasoning_content" not in message
    body = chat_body(include_reasoning=False, stream=True)
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body) as stream:
        deltas = [c["choices"][0]["delta"] for c in sse_chunks(stream)]
    assert not any("reasoning" in d for d in deltas)
    assert "".join(d.get("content", "") for d in deltas) == "The answer is 4."


def test_reasoning_controls_reach_the_engine(scripted):
    server, engine = scripted
    for extra, budget in [
        ({"thinking_budget": 7}, 7),
        ({"reasoning_effort": "low"}, 512),
        ({"reasoning_effort": "high", "thinking_budget": 3}, 3),
        ({}, None),
    ]:
        assert httpx.post(f"{server.url}/v1/chat/completions", json=chat_body(**extra)).is_success
        assert engine.requests[-1].params.thinking_budget == budget


def test_assistant_reasoning_sent_back_reaches_the_template_as_reasoning_content(scripted):
    server, engine = scripted
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello", "reasoning": "greet", "annotations": []},
        {"role": "developer", "content": "be brief"},
        {"role": "user", "content": "again"},
    ]
    response = httpx.post(f"{server.url}/v1/chat/completions", json={"model": MODEL, "messages": messages})
    assert response.is_success, response.text
    prompt = engine.requests[-1].prompt["prompt"]
    assert "<|im_start|>system\nbe brief" in prompt  # developer is rendered as system
    assert "<|im_start|>assistant\nhello<|im_end|>" in prompt  # the template drops the thought


TOOL_TEMPLATE = (
    "{%- if tools %}<|im_start|>system\nTools: {{ tools | tojson }}<|im_end|>\n{%- endif %}"
    "{%- for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{%- if m['tool_calls'] is defined %}{{ m['tool_calls'] | tojson }}{%- endif %}"
    "{{ m['content'] or '' }}<|im_end|>\n{%- endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n{%- endif %}"
)


def test_tools_and_tool_messages_pass_through_to_the_template(qwen3_ckpt, tmp_path):
    import json as json_module
    import shutil

    model = tmp_path / "tools"
    shutil.copytree(qwen3_ckpt, model)
    config = json_module.loads((model / "tokenizer_config.json").read_text())
    config["chat_template"] = TOOL_TEMPLATE
    (model / "tokenizer_config.json").write_text(json_module.dumps(config))
    engine = ScriptedEngine(Tokenizer.from_dir(model), SCRIPT)
    tool = {"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}
    call = {"id": "c1", "type": "function", "function": {"name": "add", "arguments": "{}"}}
    messages = [
        {"role": "user", "content": "add"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "5"},
    ]
    with serve(engine) as server:
        body = {"model": MODEL, "messages": messages, "tools": [tool]}
        assert httpx.post(f"{server.url}/v1/chat/completions", json=body).is_success
        prompt = engine.requests[-1].prompt["prompt"]
        assert '"name": "add"' in prompt and '"arguments": "{}"' in prompt
        assert "<|im_start|>tool5<|im_end|>" in prompt  # (the template trims newlines)
        body["tool_choice"] = "none"  # the model is not shown the tools
        assert httpx.post(f"{server.url}/v1/chat/completions", json=body).is_success
        assert "Tools:" not in engine.requests[-1].prompt["prompt"]


# ---- reasoning_output: clients that read only `content` ----------------------------------------

INLINE = "<think>\nLet me see.\n</think>\n\nThe answer is 4."


def streamed_message(server, **extra) -> tuple[str, str]:
    url, body = f"{server.url}/v1/chat/completions", chat_body(stream=True, **extra)
    with httpx.stream("POST", url, json=body) as stream:
        deltas = [c["choices"][0]["delta"] for c in sse_chunks(stream)]
    return "".join(d.get("content", "") for d in deltas), "".join(d.get("reasoning", "") for d in deltas)


@pytest.mark.parametrize(
    ("mode", "content", "reasoning"),
    [
        ("content", INLINE, None),
        ("both", INLINE, "Let me see."),
        ("separate", "The answer is 4.", "Let me see."),
    ],
)
def test_reasoning_output_modes_whole_and_streamed_agree(scripted, mode, content, reasoning):
    server, _ = scripted
    message = httpx.post(f"{server.url}/v1/chat/completions", json=chat_body(reasoning_output=mode)).json()
    message = message["choices"][0]["message"]
    assert message["content"] == content
    assert message.get("reasoning") == reasoning and message.get("reasoning_content") == reasoning
    assert streamed_message(server, reasoning_output=mode) == (content, reasoning or "")


def test_reasoning_output_content_with_include_reasoning_false_shows_only_the_answer(scripted):
    server, _ = scripted
    body = chat_body(reasoning_output="content", include_reasoning=False)
    message = httpx.post(f"{server.url}/v1/chat/completions", json=body).json()["choices"][0]["message"]
    assert message["content"] == "The answer is 4."


def test_bad_reasoning_output_is_a_400_naming_the_field(scripted):
    server, _ = scripted
    response = httpx.post(f"{server.url}/v1/chat/completions", json=chat_body(reasoning_output="inline"))
    assert response.status_code == 400
    assert "reasoning_output" in response.json()["error"]["message"]


CUT_OFF = SCRIPT[:3]  # the reply runs out of tokens while thinking


def test_server_default_content_shows_a_thought_cut_off_by_max_tokens(qwen3_ckpt):
    engine = ScriptedEngine(Tokenizer.from_dir(qwen3_ckpt), CUT_OFF)
    with serve(engine, reasoning_output="content") as server:
        message = httpx.post(f"{server.url}/v1/chat/completions", json=chat_body()).json()
        assert message["choices"][0]["message"]["content"] == "<think>\nLet me see."
        assert "reasoning" not in message["choices"][0]["message"]
        assert streamed_message(server) == ("<think>\nLet me see.", "")
        # a request still picks its own shape over the server default
        body = chat_body(reasoning_output="separate")
        separate = httpx.post(f"{server.url}/v1/chat/completions", json=body)
        assert separate.json()["choices"][0]["message"]["content"] == ""


def test_server_settings_reject_an_unknown_reasoning_output():
    from ponder.errors import InvalidRequestError
    from ponder.openai.settings import ServerSettings

    with pytest.raises(InvalidRequestError, match="reasoning_output"):
        ServerSettings(served_model_names=("m",), reasoning_output="inline")  # type: ignore[arg-type]
