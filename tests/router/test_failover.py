"""A replica killed under load: every request completes (retried elsewhere if nothing was
streamed yet) or ends with a clear error, none hangs, none is lost. Then SIGTERM on the router
drains: requests in flight finish, none is aborted, and the router exits 0."""

import asyncio
import os
import signal

import openai
import pytest

from tests.router._cluster import RouterProcess

LONG = {"ignore_eos": True}


@pytest.fixture(scope="module")
def router():
    process = RouterProcess("--router-policy", "round-robin")
    yield process
    process.close()


async def stream_one(client: openai.AsyncOpenAI, i: int, started: asyncio.Event) -> str:
    try:
        stream = await client.chat.completions.create(
            model="ponder",
            messages=[{"role": "user", "content": f"Tell me a story, number {i}."}],
            max_tokens=160,
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
        started = asyncio.Event()
        tasks = [asyncio.create_task(stream_one(client, i, started)) for i in range(6)]
        await asyncio.wait_for(started.wait(), 60)
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
