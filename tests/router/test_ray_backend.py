"""`--backend ray`: a real local Ray cluster (2 CPUs), one replica actor in a placement group,
its `ponder serve` reached through the router like a local one; killing the actor kills it."""

import asyncio

import httpx
import pytest

ray = pytest.importorskip("ray")

from ponder.router.app import build_router_app  # noqa: E402
from ponder.router.policies import RoundRobin  # noqa: E402
from ponder.router.prompts import PromptReader  # noqa: E402
from ponder.router.ray_backend import RayCluster  # noqa: E402
from ponder.router.service import RouterService  # noqa: E402


def test_replica_as_a_ray_actor_serves_through_the_router():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        cluster = RayCluster(None, 1)  # joins the cluster this process started
        assert ray.available_resources().get("CPU", 0) <= 1  # the bundle holds one CPU
        handles = cluster.replicas([["--kv-cache-memory", "32MiB"]])
        service = RouterService(handles, RoundRobin(), PromptReader(None))
        app = build_router_app(service, manage_lifecycle=False)

        async def run() -> None:
            await service.start(ready_timeout_s=120)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://router") as client:
                answer = await client.post(
                    "/v1/completions", json={"model": "ponder", "prompt": "Hello", "max_tokens": 4}
                )
                assert answer.status_code == 200, answer.text
                assert answer.json()["usage"]["completion_tokens"] == 4
                replicas = (await client.get("/replicas")).json()["data"]
                assert replicas[0]["healthy"] and replicas[0]["url"].startswith("http://")
            assert handles[0].is_running()
            await service.shutdown()
            assert not handles[0].is_running()

        asyncio.run(run())
        cluster.close()
    finally:
        ray.shutdown()
