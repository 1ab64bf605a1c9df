"""`ponder serve --disagg 1P1D` has the colocated router's admin API: GET / POST / DELETE
/admin/workers add a decode worker (a real process), refuse bad input with OpenAI-style errors,
and `ponder planner --mode disagg`'s loop, seeing little load, drains a decode worker while
requests run on both: every request completes in full, none aborted."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from ponder.planner.decide import Planner, PlannerConfig
from ponder.planner.loop import PlannerLoop, RouterClient
from ponder.profiling.step_model import StepModel
from tests.disagg._procs import Serve
from tests.fixtures.admin_api import assert_bad_input_refused

FAST_PROFILE = StepModel(overhead_s=1e-4, per_token_s=1e-6, per_seq_s=0.0, per_attn_s=0.0)


async def _complete(client: httpx.AsyncClient, i: int) -> dict:
    body = {"model": "ponder", "prompt": f"Story {i}: once upon a time", "max_tokens": 48, "ignore_eos": True}
    answer = await client.post("/v1/completions", json=body, timeout=120)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


@pytest.mark.timeout(300)
def test_disagg_router_admin_api_and_planner_drain_with_zero_aborts(tmp_path):
    router = Serve("--disagg", "1P1D", "--kv-transfer-dir", str(tmp_path)).wait(200)

    async def run() -> None:
        admin = httpx.AsyncClient(base_url=router.url, timeout=30, trust_env=False)
        try:
            listed = (await admin.get("/admin/workers")).json()["data"]
            assert [(w["id"], w["role"], w["state"]) for w in listed] == [
                ("prefill-0", "prefill", "healthy"),
                ("decode-0", "decode", "healthy"),
            ]
            await assert_bad_input_refused(admin, wrong_role="colocated")  # not a role here
            last = await admin.delete("/admin/workers/prefill-0")  # the only prefill worker
            assert last.status_code == 400 and "last prefill" in last.json()["error"]["message"]

            added = await admin.post("/admin/workers", json={"role": "decode"}, timeout=200)
            assert added.status_code == 201, added.text
            assert (added.json()["id"], added.json()["state"]) == ("decode-1", "healthy")
            roles = [w["role"] for w in (await admin.get("/admin/workers")).json()["data"]]
            assert sorted(roles) == ["decode", "decode", "prefill"]

            config = PlannerConfig(
                ttft_slo_s=60, tpot_slo_s=10, mode="disagg", min_decode=1, max_decode=2, scale_down_after=1
            )
            loop = PlannerLoop(Planner(config, FAST_PROFILE), RouterClient(router.url))
            await loop.step()  # the baseline scrape
            requests = [asyncio.create_task(_complete(admin, i)) for i in range(6)]
            await asyncio.sleep(1.0)
            decision = await loop.step()
            assert decision.action("decode") == "down", decision.reasons
            answers = await asyncio.wait_for(asyncio.gather(*requests), 150)
            await loop.settle()
            assert all(a["choices"][0]["finish_reason"] == "length" for a in answers)
            assert all(a["usage"]["completion_tokens"] == 48 for a in answers)  # none cut short
            workers = (await admin.get("/admin/workers", params={"include_removed": True})).json()["data"]
            assert sorted((w["role"], w["state"]) for w in workers) == [
                ("decode", "healthy"),
                ("decode", "removed"),
                ("prefill", "healthy"),
            ]
            after = await _complete(admin, 99)  # still serves on what is left
            assert after["usage"]["completion_tokens"] == 48
            await loop.router.aclose()
        finally:
            await admin.aclose()

    try:
        asyncio.run(run())
    finally:
        router.close()
