"""Request-body bounds: a body over --max-request-bytes is a 413 before it is parsed (declared or
streamed), bodies held at once stay within the budget (503 + Retry-After), and the server keeps
answering meanwhile."""

import asyncio
import json

import httpx
import pytest

from ponder.engine.tokenizer import Tokenizer
from ponder.errors import InvalidRequestError
from ponder.openai.settings import ServerSettings
from tests.server.harness import MODEL, ScriptedEngine, serve
from tests.server.test_reasoning_http import SCRIPT

LIMIT = 4096
BUDGET = 6000


@pytest.fixture(scope="module")
def limited(qwen3_ckpt):
    engine = ScriptedEngine(Tokenizer.from_dir(qwen3_ckpt), SCRIPT, max_model_len=8192)
    with serve(engine, max_request_bytes=LIMIT, request_body_budget_bytes=BUDGET) as server:
        yield server


def chat_body(padding: int = 0) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": "x" * padding}]}


def assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "request_too_large" and "--max-request-bytes" in error["message"]


def test_a_body_within_the_limit_is_served(limited):
    response = httpx.post(f"{limited.url}/v1/chat/completions", json=chat_body(LIMIT // 2))
    assert response.status_code == 200, response.text


def test_a_declared_large_body_is_refused_before_reading(limited):
    assert_too_large(httpx.post(f"{limited.url}/v1/chat/completions", json=chat_body(LIMIT)))


def test_a_streamed_body_without_length_is_cut_at_the_limit(limited):
    payload = json.dumps(chat_body(LIMIT)).encode()

    def chunks():
        for start in range(0, len(payload), 1000):
            yield payload[start : start + 1000]

    response = httpx.post(
        f"{limited.url}/v1/chat/completions",
        content=chunks(),
        headers={"content-type": "application/json"},
    )
    assert "content-length" not in response.request.headers  # sent chunked
    assert_too_large(response)
    assert httpx.get(f"{limited.url}/health").status_code == 200


def test_bodies_held_at_once_stay_within_the_budget(limited):
    """One slow client holds 3500 bytes; a second 3500-byte body would pass the budget."""

    async def run():
        release = asyncio.Event()
        body = json.dumps(chat_body(3400)).encode()
        assert 3400 < len(body) < LIMIT and 2 * len(body) > BUDGET

        async def slow():
            yield body[:-10]
            await release.wait()
            yield body[-10:]

        async with httpx.AsyncClient(base_url=limited.url, timeout=30) as client:
            headers = {"content-type": "application/json"}
            first = asyncio.ensure_future(
                client.post("/v1/chat/completions", content=slow(), headers=headers)
            )
            await asyncio.sleep(0.5)  # the first body is held, unfinished
            second = await client.post("/v1/chat/completions", content=body, headers=headers)
            health = await client.get("/health")
            release.set()
            return await first, second, health

    first, second, health = asyncio.run(run())
    assert second.status_code == 503 and second.headers["retry-after"] == "1"
    assert second.json()["error"]["code"] == "request_memory_exhausted"
    assert health.status_code == 200
    assert first.status_code == 200, first.text
    # the budget is released: the same body passes now
    assert httpx.post(f"{limited.url}/v1/chat/completions", json=chat_body(3400)).status_code == 200


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"max_request_bytes": 0}, "max_request_bytes"),
        ({"max_request_bytes": 100, "request_body_budget_bytes": 50}, "request_body_budget"),
    ],
)
def test_bad_limits_are_refused(fields, param):
    with pytest.raises(InvalidRequestError) as error:
        ServerSettings((MODEL,), **fields)
    assert error.value.param == param


@pytest.mark.parametrize("protect_metrics", [False, True])
def test_metrics_need_the_key_only_when_asked(qwen3_ckpt, protect_metrics):
    engine = ScriptedEngine(Tokenizer.from_dir(qwen3_ckpt), SCRIPT)
    with serve(engine, api_key="sesame", protect_metrics=protect_metrics) as server:
        bare = httpx.get(f"{server.url}/metrics")
        keyed = httpx.get(f"{server.url}/metrics", headers={"Authorization": "Bearer sesame"})
        assert httpx.get(f"{server.url}/health").status_code == 200  # probes never need the key
        assert httpx.get(f"{server.url}/v1/models").status_code == 401
    assert keyed.status_code == 200 and "ponder:" in keyed.text
    if protect_metrics:
        assert bare.status_code == 401 and bare.json()["error"]["code"] == "invalid_api_key"
    else:
        assert bare.status_code == 200


def test_every_refusal_is_counted_and_none_is_an_abort(qwen3_ckpt):
    from tests.e2e.test_robustness import metric

    engine = ScriptedEngine(Tokenizer.from_dir(qwen3_ckpt), SCRIPT, max_model_len=64)
    with serve(engine, max_request_bytes=LIMIT, request_body_budget_bytes=BUDGET) as server:
        chat = f"{server.url}/v1/chat/completions"
        for _ in range(3):
            httpx.post(chat, content=b"", headers=JSON_HEADERS)  # 400 before any model
        httpx.post(chat, json={**chat_body(), "model": "nope"})  # 404
        httpx.post(chat, json=chat_body(LIMIT))  # 413
        httpx.post(chat, json=chat_body(300))  # 400: longer than the context
        httpx.post(f"{server.url}/v1/completions", json={"model": MODEL, "prompt": ["hi", "x " * 300]})
        assert httpx.post(chat, json=chat_body()).status_code == 200
        text = httpx.get(f"{server.url}/metrics").text
    count = lambda status: metric(
        text, "ponder:http_responses_total", route="/v1/chat/completions", status=status
    )
    assert (count("400"), count("404"), count("413"), count("200")) == (4, 1, 1, 1)
    assert metric(text, "ponder:http_responses_total", route="/v1/completions", status="400") == 1
    # the second prompt of the completions request was too long: a rejection, not an abort
    assert metric(text, "ponder:request_success_total", finished_reason="abort", model_name=MODEL) == 0


JSON_HEADERS = {"content-type": "application/json"}


class ThreadRecordingTokenizer(Tokenizer):
    """Records the thread each prompt is tokenized on."""

    threads: list[str]

    def encode(self, text, *args, **kwargs):
        import threading

        self.threads.append(threading.current_thread().name)
        return super().encode(text, *args, **kwargs)


@pytest.mark.parametrize("route", ["/v1/chat/completions", "/v1/completions", "/v1/responses"])
def test_prompts_are_tokenized_off_the_event_loop(qwen3_ckpt, route):
    # The server runs its event loop in one thread; a prompt tokenized there would stall every
    # other stream and /health for as long as a huge prompt takes.
    tokenizer = Tokenizer.from_dir(qwen3_ckpt)
    tokenizer.__class__ = ThreadRecordingTokenizer
    tokenizer.threads = []
    engine = ScriptedEngine(tokenizer, SCRIPT, max_model_len=8192)
    bodies = {
        "/v1/chat/completions": chat_body(),
        "/v1/completions": {"model": MODEL, "prompt": "hello there", "max_tokens": 4},
        "/v1/responses": {"model": MODEL, "input": "hello there"},
    }
    with serve(engine) as server:
        loop_thread = server.thread.name
        response = httpx.post(server.url + route, json=bodies[route], timeout=30)
        assert response.status_code == 200, response.text
    assert tokenizer.threads and loop_thread not in tokenizer.threads
