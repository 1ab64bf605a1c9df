"""kill -9 under load: every client gets an error at once (none hangs), the server restarted on
the same port serves again with the same greedy output. (`ponder batch` killed with -9 resumes:
tests/e2e/test_batch.py.)"""

import asyncio
import signal

import httpx

from tests.server.harness import free_port, start_ponder_serve

ARGV = ("--max-num-seqs", "4", "--block-size", "4", "--kv-cache-memory", "16MiB")


def completion(prompt: str, **extra) -> dict:
    return {"model": "ponder", "prompt": prompt, "max_tokens": 64, "temperature": 0, **extra}


async def load(url: str, killed: asyncio.Event) -> list[str]:
    """Eight concurrent requests, half streaming; the outcome of each once the server dies."""

    async def one(client: httpx.AsyncClient, i: int) -> str:
        body = completion(f"Q{i}: what is {i} + {i}?", stream=i % 2 == 0, max_tokens=2000)
        try:
            async with client.stream("POST", f"{url}/v1/completions", json=body) as response:
                async for _ in response.aiter_bytes():
                    pass
            return "finished"  # possible for a short answer, before the kill
        except httpx.HTTPError as error:
            assert killed.is_set(), f"request {i} failed before the kill: {error!r}"
            return type(error).__name__

    async with httpx.AsyncClient(timeout=httpx.Timeout(30, connect=5)) as client:
        return await asyncio.gather(*(one(client, i) for i in range(8)))


def test_kill_9_under_load_then_restart(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_ponder_serve(ARGV, port)
    try:
        before = httpx.post(f"{url}/v1/completions", json=completion("2+3="), timeout=60).json()

        async def kill_under_load() -> list[str]:
            killed = asyncio.Event()
            requests = asyncio.ensure_future(load(url, killed))
            await asyncio.sleep(1.5)  # every request admitted and generating
            killed.set()
            server.send_signal(signal.SIGKILL)
            return await asyncio.wait_for(requests, timeout=30)  # none may hang

        outcomes = asyncio.run(kill_under_load())
        assert server.wait(timeout=10) == -signal.SIGKILL
        assert outcomes.count("finished") < len(outcomes)  # the kill really hit requests in flight
    finally:
        if server.poll() is None:
            server.kill()
    restarted = start_ponder_serve(ARGV, port)
    try:
        after = httpx.post(f"{url}/v1/completions", json=completion("2+3="), timeout=60).json()
        assert after["choices"][0]["text"] == before["choices"][0]["text"]
        assert httpx.get(f"{url}/health").status_code == 200
    finally:
        restarted.terminate()
        assert restarted.wait(timeout=60) == 0
