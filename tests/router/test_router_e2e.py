"""Two real replicas of the built-in model behind the router, driven by the openai client."""

import time

import httpx
import openai
import pytest

from tests.router._cluster import RouterProcess

SYSTEM = "You are a careful assistant. " * 12  # a few blocks every conversation shares


@pytest.fixture(scope="module")
def router():
    process = RouterProcess("--router-policy", "kv-aware")
    yield process
    process.close()


def client(router) -> openai.OpenAI:
    return openai.OpenAI(base_url=router.url + "/v1", api_key="unused", max_retries=0)


def test_chat_completion_and_stream_through_the_router(router):
    answer = client(router).chat.completions.create(
        model="ponder", messages=[{"role": "user", "content": "hi"}], max_tokens=8
    )
    assert answer.choices[0].finish_reason in ("length", "stop") and answer.usage.completion_tokens > 0
    chunks = list(
        client(router).chat.completions.create(
            model="ponder", messages=[{"role": "user", "content": "hi"}], max_tokens=8, stream=True
        )
    )
    assert chunks and chunks[-1].choices[0].finish_reason is not None
    models = client(router).models.list()
    assert [m.id for m in models.data] == ["ponder"]


def test_a_conversation_sticks_to_the_replica_that_holds_its_prefix(router):
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Count to three."}]
    first = client(router).chat.completions.create(model="ponder", messages=messages, max_tokens=8)
    before = {r["name"]: r["routed"] for r in router.replicas()}
    time.sleep(0.6)  # let the router poll the replicas' KV events
    assert sum(r["cached_blocks"] for r in router.replicas()) > 0
    follow_up = messages + [
        {"role": "assistant", "content": first.choices[0].message.content or ""},
        {"role": "user", "content": "And to four?"},
    ]
    routed = []
    for _ in range(3):
        answer = client(router).chat.completions.create(model="ponder", messages=follow_up, max_tokens=4)
        assert answer.usage.prompt_tokens_details.cached_tokens > 0  # the replica really had it
        after = {r["name"]: r["routed"] for r in router.replicas()}
        routed.append(next(name for name in after if after[name] != before[name]))
        before = after
    assert len(set(routed)) == 1


def test_router_metrics_and_replica_metrics(router):
    text = httpx.get(router.url + "/metrics", timeout=5).text
    assert 'ponder_router_requests_total{outcome="ok",replica="replica-0"}' in text
    assert "ponder_router_replica_in_flight" in text and "ponder_router_prefix_blocks_total" in text
    replica = httpx.get(router.url + "/replicas/1/metrics", timeout=5)
    assert replica.status_code == 200 and "ponder:prefix_cache_hits" in replica.text
