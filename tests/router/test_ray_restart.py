"""`--backend ray` on a real local Ray cluster: a replica whose actor is killed is detected,
restarted as a new actor in its own placement-group bundle, and serves again; a worker added
through the registry (scale-up) gets a placement group of its own, serves, and drains out on
removal with nothing aborted."""

import asyncio
import json

import pytest

ray = pytest.importorskip("ray")

from ponder.router.health import HealthPolicy  # noqa: E402
from ponder.router.policies import RoundRobin  # noqa: E402
from ponder.router.prompts import PromptReader  # noqa: E402
from ponder.router.ray_backend import RayCluster  # noqa: E402
from ponder.router.registry import RaySpawner, WorkerRegistry  # noqa: E402
from ponder.router.service import RouterService  # noqa: E402

JSON = {"content-type": "application/json"}
SERVE_ARGS = ["--kv-cache-memory", "32MiB"]
FAST = HealthPolicy(
    probe_interval_s=0.3,
    probe_timeout_s=1.0,
    failed_probes_to_hung=3,
    restart_backoff_s=0.2,
    ready_timeout_s=120,
)


async def _complete(service: RouterService, prompt: str, max_tokens: int = 4) -> dict:
    body = json.dumps({"model": "ponder", "prompt": prompt, "max_tokens": max_tokens}).encode()
    upstream = await service.open("/v1/completions", body, JSON)
    data = b"".join([chunk async for chunk in service.relay(upstream, b"")])
    assert upstream.status_code == 200, data
    return json.loads(data)


async def _until(condition, what: str, timeout_s: float = 120.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


@pytest.mark.timeout(300)
def test_killed_ray_replica_restarts_in_its_bundle_and_scale_up_gets_its_own_group():
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False)
    try:
        cluster = RayCluster(None, 1)
        handles = cluster.replicas([SERVE_ARGS])
        service = RouterService(handles, RoundRobin(), PromptReader(None), health_policy=FAST)
        registry = WorkerRegistry(service, RaySpawner(cluster), SERVE_ARGS)

        async def run() -> None:
            await service.start(ready_timeout_s=120)
            try:
                assert (await _complete(service, "before"))["usage"]["completion_tokens"] == 4
                victim = handles[0]
                old_actor, old_url = victim.actor, victim.url
                ray.kill(old_actor)  # the actor and the server process it owns are gone
                await _until(lambda: service.health[0].restarts == 1, "the restart")
                await _until(lambda: service.replicas[0].healthy, "the restarted replica")
                assert victim.actor is not old_actor and victim.is_running()
                assert victim.url and victim.url != old_url  # a new server on a new port
                assert (await _complete(service, "after restart"))["usage"]["completion_tokens"] == 4
                # still inside the one bundle of the cluster's placement group: 1 of 3 CPUs held
                assert ray.available_resources().get("CPU", 0) == pytest.approx(2.0)

                info = await registry.add("colocated", ready_timeout_s=120)  # scale-up
                assert info.healthy and info.managed
                assert len(cluster.extra_groups) == 1
                assert ray.available_resources().get("CPU", 0) == pytest.approx(1.0)
                answers = await asyncio.gather(*(_complete(service, f"q{i}") for i in range(4)))
                assert all(a["usage"]["completion_tokens"] == 4 for a in answers)
                assert service.replicas[info.index].routed >= 1  # the new worker takes traffic

                removed = await registry.remove(info.id, drain_timeout_s=30)
                assert removed.state == "removed"
                assert not service.handles[info.index].is_running()
                assert (await _complete(service, "after removal"))["usage"]["completion_tokens"] == 4
            finally:
                await service.shutdown()

        asyncio.run(run())
        cluster.close()
    finally:
        ray.shutdown()
