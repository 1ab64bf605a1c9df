"""Two real replicas of the built-in model behind the router, driven by the openai client; the
last test kills one under load (every request completes, retried elsewhere if nothing was
streamed yet, or ends with a clear error; none hangs, none is lost), then SIGTERM drains the
router (requests in flight finish, none aborted, exit 0). One router process for all: startup
is most of the time."""

import asyncio
import os
import signal
import time

import httpx
import openai
import pytest

from tests.router._cluster import RouterProcess

LONG = {"ignore_eos": True}
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


async def stream_one(client: openai.AsyncOpenAI, i: int, started: asyncio.Event) -> str:
    try:
        stream = await client.chat.completions.create(
            model="ponder",
            messages=[{"role": "user", "content": f"Tell me a story, number {i}."}],
            max_tokens=96,
            stream=True,
            extra_body=LONG,
        )
        finish = None
        async for chunk in stream:
            started.set()
            if chunk.choices and chunk.choices[0].finish_reason:
                finish = chunk.choices[0].finish_reason
        return "completed" if finish == "length" else f"cut ({finish})"
    except openai.APIError as error:
        return "error: " + str(error)


def test_kill_a_replica_mid_load_then_drain_on_sigterm(router):
    async def kill_under_load() -> list[str]:
        client = openai.AsyncOpenAI(base_url=router.url + "/v1", api_key="unused", max_retries=0)
        started = [asyncio.Event() for _ in range(6)]
        tasks = [asyncio.create_task(stream_one(client, i, started[i])) for i in range(6)]
        # every stream has sent tokens: the victim's must end with an error event, not a retry
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in started)), 60)
        victim = max(router.replicas(), key=lambda r: r["in_flight"])
        assert victim["in_flight"] > 0
        os.kill(victim["pid"], signal.SIGKILL)
        # more requests after the kill: routed to the survivor (or retried there)
        late = [asyncio.create_task(stream_one(client, 100 + i, asyncio.Event())) for i in range(2)]
        return await asyncio.wait_for(asyncio.gather(*tasks, *late), 120)  # none hangs

    outcomes = asyncio.run(kill_under_load())
    assert len(outcomes) == 8  # none lost
    assert all(o == "completed" or o.startswith("error: ") for o in outcomes), outcomes
    errors = [o for o in outcomes if o != "completed"]
    assert errors and all("replica" in o for o in errors), outcomes  # the victim's streams say why
    assert all(o == "completed" for o in outcomes[6:]), outcomes  # nothing new goes to the dead one
    states = {r["name"]: r["healthy"] for r in router.replicas()}
    assert sorted(states.values()) == [False, True]

    async def drain() -> list[str]:
        client = openai.AsyncOpenAI(base_url=router.url + "/v1", api_key="unused", max_retries=0)
        started = asyncio.Event()
        tasks = [asyncio.create_task(stream_one(client, i, started)) for i in range(3)]
        await asyncio.wait_for(started.wait(), 60)
        router.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(asyncio.gather(*tasks), 120)

    assert asyncio.run(drain()) == ["completed"] * 3  # zero aborted
    assert router.process.wait(60) == 0
