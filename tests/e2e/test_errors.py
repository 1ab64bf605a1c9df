"""Every error case: status, OpenAI error shape, a message that says what to fix; none harms
the requests around it. 429 + Retry-After when the waiting queue is full."""

import json
import threading

import httpx
import pytest

from tests.server.harness import MODEL, real_engine, serve

KEY = "sekret"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def keyed(qwen3_ckpt):
    with serve(real_engine(qwen3_ckpt, max_model_len=64), api_key=KEY) as running:
        yield running


def post(server, path: str, body, headers=AUTH, **kwargs) -> httpx.Response:
    if isinstance(body, str | bytes):
        headers = {**headers, "Content-Type": "application/json"}
        return httpx.post(f"{server.url}{path}", content=body, headers=headers, **kwargs)
    return httpx.post(f"{server.url}{path}", json=body, headers=headers, **kwargs)


def assert_error(response: httpx.Response, status: int, param=None, *message_parts: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    assert error["param"] == param
    for part in message_parts:
        assert part in error["message"], error["message"]
    return error


def chat(**fields) -> dict:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 2,
        **fields,
    }


def test_api_key(keyed):
    assert_error(post(keyed, "/v1/chat/completions", chat(), headers={}), 401, None, "API key")
    wrong = {"Authorization": "Bearer nope"}
    error = assert_error(post(keyed, "/v1/chat/completions", {"junk": 1}, headers=wrong), 401)
    assert error["code"] == "invalid_api_key"
    assert httpx.get(f"{keyed.url}/v1/models").status_code == 401
    assert httpx.get(f"{keyed.url}/health").status_code == 200
    assert httpx.get(f"{keyed.url}/metrics").status_code == 200
    assert post(keyed, "/v1/chat/completions", chat()).status_code == 200


def test_unknown_model_and_routes(keyed):
    error = assert_error(
        post(keyed, "/v1/chat/completions", chat(model="gpt-9")), 404, "model", "gpt-9", MODEL
    )
    assert error["code"] == "model_not_found"
    assert_error(httpx.get(f"{keyed.url}/v1/models/gpt-9", headers=AUTH), 404, "model")
    assert_error(httpx.get(f"{keyed.url}/v1/nothing", headers=AUTH), 404)
    assert_error(httpx.get(f"{keyed.url}/v1/chat/completions", headers=AUTH), 405)


@pytest.mark.parametrize(
    ("body", "param", "hint"),
    [
        (chat(temperature="hot"), "temperature", "valid number"),
        (chat(temperature=-1), "temperature", "greater than or equal to 0"),
        (chat(top_p=1.5), "top_p", "less than or equal to 1"),
        (chat(n=0), "n", "greater than or equal to 1"),
        (chat(max_tokens=True), "max_tokens", "valid integer"),
        (chat(frobnicate=1), "frobnicate", "Unrecognized request argument"),
        (chat(stream_options={"include_usage": True, "extra": 1}), "stream_options.extra", ""),
        ({"model": MODEL}, "messages", "Missing required parameter"),
        (chat(messages=[]), "messages", "at least 1"),
        (chat(messages=[{"role": "wizard", "content": "x"}]), "messages.0.role", ""),
        (
            chat(messages=[{"role": "user", "content": [{"type": "image_url"}]}]),
            "messages",
            "text only",
        ),
        (chat(messages=[{"role": "user"}]), "messages", "needs content"),
        (chat(logit_bias={"5": 10}), "logit_bias", "not supported"),
        (chat(response_format={"type": "yaml"}), "response_format", "not supported"),
        (chat(response_format={"type": "json_schema"}), "response_format.json_schema.schema", "needs"),
        (chat(top_logprobs=2), "top_logprobs", "logprobs"),
        (chat(stop=[""]), "stop", "empty"),
        (chat(min_tokens=5, max_tokens=2), "min_tokens", "must not exceed"),
        (chat(reasoning_effort="extreme"), "reasoning_effort", "low"),
        (chat(chat_template_kwargs={"messages": []}), "chat_template_kwargs", "may not set"),
        (chat(seed=2**70), "seed", ""),
        (chat(stop_token_ids=[-1]), "stop_token_ids.0", ""),
        ("{not json", None, "not valid JSON"),
        ("[1, 2]", None, ""),
    ],
)
def test_invalid_chat_requests_get_400(keyed, body, param, hint):
    assert_error(post(keyed, "/v1/chat/completions", body), 400, param, hint)


def test_prompt_too_long_names_the_limits(keyed):
    long_chat = chat(messages=[{"role": "user", "content": "word " * 200}])
    error = assert_error(
        post(keyed, "/v1/chat/completions", long_chat),
        400,
        "messages",
        "maximum context length is 64",
    )
    assert error["code"] == "context_length_exceeded"
    error = assert_error(
        post(keyed, "/v1/chat/completions", chat(max_tokens=60)),
        400,
        "max_tokens",
        "maximum context length is 64",
        "at most",
    )
    assert error["code"] == "context_length_exceeded"
    completion = {"model": MODEL, "prompt": "word " * 200}
    assert_error(post(keyed, "/v1/completions", completion), 400, "prompt", "64")


def test_invalid_completion_requests_get_400(keyed):
    for body, param in [
        ({"model": MODEL, "prompt": [10**6]}, "prompt_token_ids"),
        ({"model": MODEL, "prompt": []}, "prompt"),
        ({"model": MODEL, "prompt": "x", "suffix": "y"}, "suffix"),
        ({"model": MODEL, "prompt": "x", "best_of": 3}, "best_of"),
        ({"model": MODEL, "prompt": "x", "logprobs": 21}, "logprobs"),
        ({"model": MODEL, "prompt": "x", "messages": []}, "messages"),
    ]:
        assert_error(post(keyed, "/v1/completions", body), 400, param)


def test_lone_surrogates_are_a_400_not_a_crash(keyed):
    raw = '{"model": "tiny", "messages": [{"role": "user", "content": "bad \\ud800 text"}]}'
    assert_error(post(keyed, "/v1/chat/completions", raw), 400, "messages", "Unicode")
    raw_model = '{"model": "\\udfff", "messages": [{"role": "user", "content": "x"}]}'
    response = post(keyed, "/v1/chat/completions", raw_model)
    assert response.status_code == 404 and json.loads(response.text)["error"]["param"] == "model"


def test_errors_do_not_harm_a_concurrent_request(keyed):
    results = {}

    def good():
        body = chat(max_tokens=30, ignore_eos=True)
        results["good"] = post(keyed, "/v1/chat/completions", body)

    thread = threading.Thread(target=good)
    thread.start()
    for bad in (chat(top_p=7), "{", chat(model="x"), chat(messages=[{"role": "user"}])):
        assert post(keyed, "/v1/chat/completions", bad).status_code in (400, 404)
    thread.join()
    assert results["good"].status_code == 200
    assert results["good"].json()["usage"]["completion_tokens"] == 30


def test_full_queue_answers_429_with_retry_after(qwen3_ckpt):
    engine = real_engine(qwen3_ckpt, max_num_seqs=1)
    with serve(engine, max_num_seqs=1, max_queue_len=1, retry_after_s=2) as server:
        long = chat(max_tokens=200, ignore_eos=True, stream=True)
        with httpx.Client(base_url=server.url, timeout=30) as http:
            with (
                http.stream("POST", "/v1/chat/completions", json=long) as first,
                http.stream("POST", "/v1/chat/completions", json=long) as second,
            ):
                assert first.status_code == second.status_code == 200
                refused = http.post("/v1/chat/completions", json=chat())
                assert_error(refused, 429, None, "capacity")
                assert refused.headers["Retry-After"] == "2"
                assert refused.json()["error"]["code"] == "rate_limit_exceeded"
                page = http.get("/metrics").text
                assert (
                    'ponder:requests_rejected_total{model_name="tiny",reason="rate_limit_exceeded"}'
                    " 1.0" in page
                )
        # the two streams were closed early: their KV is freed and the server accepts again
        assert httpx.post(f"{server.url}/v1/chat/completions", json=chat()).status_code == 200
