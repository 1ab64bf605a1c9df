"""Bodies that are not a JSON object get a 400 that says what is wrong with the body itself."""

import httpx
import pytest

from ponder.engine.tokenizer import Tokenizer
from tests.server.harness import ScriptedEngine, serve
from tests.server.test_reasoning_http import SCRIPT


@pytest.fixture(scope="module")
def server(qwen3_ckpt):
    with serve(ScriptedEngine(Tokenizer.from_dir(qwen3_ckpt), SCRIPT)) as running:
        yield running


JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("content", "headers", "says"),
    [
        (b"", {}, "The request body is empty"),
        (b"", JSON, "The request body is empty"),
        (b'{"model": "tiny", "messages": []}', {}, "'Content-Type: application/json'"),
        (
            b'{"model": "tiny", "messages": []}',
            {"content-type": "text/plain"},
            "'Content-Type: application/json'",
        ),
        (b"[1, 2]", JSON, "must be a JSON object, not list"),
        (b"{bad", JSON, "not valid JSON"),
    ],
)
@pytest.mark.parametrize("route", ["/v1/chat/completions", "/v1/completions", "/v1/responses"])
def test_the_message_names_the_problem(server, route, content, headers, says):
    response = httpx.post(server.url + route, content=content, headers=headers)
    assert response.status_code == 400
    error = response.json()["error"]
    assert says in error["message"] and "None" not in error["message"]
    assert error["type"] == "invalid_request_error"


CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("route", "body", "param"),
    [
        ("/v1/chat/completions", {**CHAT, "stop": ["x"] * 10_000}, "stop"),
        ("/v1/chat/completions", {**CHAT, "stop": "x" * 5000}, "stop"),
        ("/v1/chat/completions", {**CHAT, "stop_token_ids": [1] * 5000}, "stop_token_ids"),
        ("/v1/chat/completions", {**CHAT, "messages": [{"role": "user", "content": "a"}] * 5000}, "messages"),
        ("/v1/chat/completions", {**CHAT, "tools": [{"type": "function"}] * 200}, "tools"),
        ("/v1/chat/completions", {**CHAT, "metadata": {str(i): "v" for i in range(20)}}, "metadata"),
        ("/v1/chat/completions", {**CHAT, "chat_template_kwargs": {str(i): 1 for i in range(100)}}, None),
        ("/v1/completions", {"model": "tiny", "prompt": ["a"] * 3000}, "prompt"),
        ("/v1/completions", {"model": "tiny", "prompt": "a", "stop": ["x"] * 17}, "stop"),
        ("/v1/responses", {"model": "tiny", "input": [{"role": "user", "content": "a"}] * 5000}, "input"),
    ],
)
def test_unbounded_lists_get_a_clear_400(server, route, body, param):
    response = httpx.post(server.url + route, json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "at most" in error["message"], error["message"]
    if param is not None:
        assert error["param"].split(".")[0].split("[")[0] == param, error


def test_a_request_inside_the_bounds_still_runs(server):
    body = {**CHAT, "stop": ["x"] * 16, "max_tokens": 4}
    assert httpx.post(server.url + "/v1/chat/completions", json=body).status_code == 200
