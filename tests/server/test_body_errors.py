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
