"""With real `ponder serve` workers behind an in-process router: the admin API adds a worker
(POST /admin/workers) and refuses bad input with OpenAI-style errors; then the planner, seeing
little load, scales down while requests run on both workers: the one it removes is drained
(DELETE /admin/workers/{id}), and every request completes in full, none aborted."""

import asyncio
import json

import httpx
import pytest

from ponder.planner.decide import Planner, PlannerConfig
from ponder.planner.loop import PlannerLoop, RouterClient
from ponder.profiling.step_model import StepModel
from ponder.router.admin import install_admin_routes
from ponder.router.app import build_router_app
from ponder.router.policies import RoundRobin
from ponder.router.prompts import PromptReader
from ponder.router.registry import LocalSpawner, WorkerRegistry
from ponder.router.replicas import LocalReplica
from ponder.router.service import RouterService
from tests.fixtures.admin_api import assert_bad_input_refused

ARGV = ["--kv-cache-memory", "32MiB"]
FAST_PROFILE = StepModel(overhead_s=1e-4, per_token_s=1e-6, per_seq_s=0.0, per_attn_s=0.0)


async def _complete(service: RouterService, i: int) -> dict:
    body = {"model": "ponder", "prompt": f"Story {i}:", "max_tokens": 48, "ignore_eos": True}
    upstream = await service.open(
        "/v1/completions", json.dumps(body).encode(), {"content-type": "application/json"}
    )
    data = b"".join([chunk async for chunk in service.relay(upstream, b"")])
    assert upstream.status_code == 200, data
    return json.loads(data)


@pytest.mark.timeout(240)
def test_admin_api_adds_a_worker_and_the_planner_drains_one_with_zero_aborts():
    service = RouterService([LocalReplica("replica-0", ARGV)], RoundRobin(), PromptReader(None))
    registry = WorkerRegistry(service, LocalSpawner(), ARGV)
    app = build_router_app(service, manage_lifecycle=False)
    install_admin_routes(app, registry)

    async def run() -> None:
        await service.start(ready_timeout_s=120)
        admin = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://router")
        try:
            await assert_bad_input_refused(admin, wrong_role="both")
            added = await admin.post("/admin/workers", json={"role": "colocated"}, timeout=180)
            assert added.status_code == 201, added.text
            assert added.json()["state"] == "healthy" and added.json()["id"] == "worker-1"
            listed = (await admin.get("/admin/workers")).json()["data"]
            assert [(w["id"], w["role"], w["healthy"]) for w in listed] == [
                ("replica-0", "colocated", True),
                ("worker-1", "colocated", True),
            ]
            config = PlannerConfig(
                ttft_slo_s=60, tpot_slo_s=10, min_prefill=1, max_prefill=2, scale_down_after=1
            )
            loop = PlannerLoop(Planner(config, FAST_PROFILE), RouterClient("http://router", client=admin))
            await loop.step()  # the baseline scrape
            requests = [asyncio.create_task(_complete(service, i)) for i in range(6)]
            await asyncio.sleep(0.3)
            assert all(r.in_flight > 0 for r in service.replicas)  # both are busy now
            decision = await loop.step()
            assert decision.target == {"colocated": 1} and decision.action("colocated") == "down"
            assert "drain one" in decision.reasons["colocated"]
            answers = await asyncio.wait_for(asyncio.gather(*requests), 120)
            await loop.settle()
            assert all(a["choices"][0]["finish_reason"] == "length" for a in answers)
            assert all(a["usage"]["completion_tokens"] == 48 for a in answers)  # none cut short
            workers = (await admin.get("/admin/workers", params={"include_removed": True})).json()["data"]
            assert sorted(w["state"] for w in workers) == ["healthy", "removed"]
            removed = next(w for w in workers if w["state"] == "removed")
            assert not service.handles[removed["index"]].is_running()
            text = loop.metrics.registry
            assert (
                text.get_sample_value(
                    "ponder_planner_decisions_total", {"role": "colocated", "action": "down"}
                )
                == 1
            )
        finally:
            await admin.aclose()
            await service.shutdown()

    asyncio.run(run())
