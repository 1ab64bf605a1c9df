"""One request failing inside the engine (injected into its detokenizing) is a 500 for that
request only, JSON or an SSE error event; concurrent requests and the next ones are served."""

import asyncio
import json

import httpx
import pytest

from tests.server.harness import MODEL, real_engine, serve


@pytest.fixture(scope="module")
def faulty_server(qwen3_ckpt):
    engine = real_engine(qwen3_ckpt)
    updater = engine.engine.updater
    append = updater.append_sampled

    def faulty(seq, sampled, row, now):
        if "boom" in (seq.request.prompt or "") and seq.num_output_tokens >= 2:
            raise ValueError("injected detokenizer fault")
        append(seq, sampled, row, now)

    updater.append_sampled = faulty
    with serve(engine) as server:
        yield server


def body(prompt: str, **extra) -> dict:
    return {"model": MODEL, "prompt": prompt, "max_tokens": 8, "temperature": 0, **extra}


def test_the_failed_request_gets_a_500_and_the_others_are_served(faulty_server):
    url = f"{faulty_server.url}/v1/completions"

    async def main():
        async with httpx.AsyncClient(timeout=60) as client:
            return await asyncio.gather(
                client.post(url, json=body("hello there")),
                client.post(url, json=body("boom goes")),
                client.post(url, json=body("another one")),
            )

    good, bad, other = asyncio.run(main())
    assert good.status_code == other.status_code == 200
    assert good.json()["usage"]["completion_tokens"] == 8
    assert bad.status_code == 500
    error = bad.json()["error"]
    assert error["type"] == "server_error" and "injected detokenizer fault" in error["message"]
    again = httpx.post(url, json=body("hello there")).json()
    assert again["choices"][0]["text"] == good.json()["choices"][0]["text"]
    stats = faulty_server.app.state.context.engine.stats()
    assert stats.num_requests == 0 and stats.kv_blocks_used == 0


def test_a_stream_that_fails_ends_with_an_error_event(faulty_server):
    url = f"{faulty_server.url}/v1/completions"
    with httpx.stream("POST", url, json=body("boom again", stream=True), timeout=60) as response:
        assert response.status_code == 200
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    last = json.loads(events[-2])
    assert "injected detokenizer fault" in last["error"]["message"]
    assert httpx.get(f"{faulty_server.url}/health").status_code == 200
