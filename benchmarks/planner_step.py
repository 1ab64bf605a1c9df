"""The planner reacting to a load step on CPU: one colocated worker behind an in-process router,
Poisson load at --rate for --phase seconds, then at twice the rate; `ponder planner` logic
(PlannerLoop, not dry-run) scales through the router's admin API. Prints one row per decision
(time, rate, workers, attainment) and a per-phase summary; writes the JSON lines to --log."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time

import httpx

from ponder.planner.decide import Planner, PlannerConfig
from ponder.planner.loop import PlannerLoop, RouterClient
from ponder.profiling.step_model import StepModel
from ponder.router.admin import install_admin_routes
from ponder.router.app import build_router_app
from ponder.router.policies import LeastLoad
from ponder.router.prompts import PromptReader
from ponder.router.registry import LocalSpawner, WorkerRegistry
from ponder.router.replicas import LocalReplica
from ponder.router.service import RouterService

HEADERS = {"content-type": "application/json"}


async def one(service: RouterService, i: int, max_tokens: int, results: list, phase: int) -> None:
    body = {"model": "ponder", "prompt": f"Request {i}: " + "think " * 40, "max_tokens": max_tokens}
    body |= {"ignore_eos": True, "stream": True}
    start = time.monotonic()
    first = None
    try:
        upstream = await service.open("/v1/completions", json.dumps(body).encode(), HEADERS)
        first = time.monotonic()
        async for _ in service.relay(upstream, b""):
            pass
        results.append((phase, first - start, (time.monotonic() - first) / max(1, max_tokens - 1), True))
    except Exception:
        results.append((phase, float("inf"), float("inf"), False))


async def main(args: argparse.Namespace) -> None:
    argv = ["--kv-cache-memory", "64MiB"]
    service = RouterService([LocalReplica("replica-0", argv)], LeastLoad(), PromptReader(None))
    registry = WorkerRegistry(service, LocalSpawner(), argv)
    app = build_router_app(service, manage_lifecycle=False)
    install_admin_routes(app, registry)
    await service.start()
    admin = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://router")
    config = PlannerConfig(
        ttft_slo_s=args.ttft_slo_ms / 1000,
        tpot_slo_s=args.tpot_slo_ms / 1000,
        min_prefill=1,
        max_prefill=args.max_workers,
        max_decode=args.max_workers,
        scale_down_after=3,
    )
    log = open(args.log, "w")
    loop = PlannerLoop(
        Planner(config, StepModel.load(args.profile)), RouterClient("http://router", admin), log=log
    )
    results: list = []
    t0 = time.monotonic()
    rng = random.Random(0)

    async def load() -> None:
        tasks, i = [], 0
        for phase, rate in enumerate((args.rate, 2 * args.rate)):
            end = time.monotonic() + args.phase
            while time.monotonic() < end:
                tasks.append(asyncio.create_task(one(service, i, args.max_tokens, results, phase)))
                i += 1
                await asyncio.sleep(rng.expovariate(rate))
        await asyncio.gather(*tasks)

    async def plan() -> None:
        while True:
            d = await loop.step()
            print(
                f"| {time.monotonic() - t0:5.0f} | {d.observed['rate']:.2f} | {d.predicted['rate']:.2f} | "
                f"{d.current['colocated']} | {d.target['colocated']} | {d.observed['ttft_attainment']:.2f} | "
                f"{d.observed['tpot_attainment']:.2f} | {d.reasons['colocated']} |",
                flush=True,
            )
            await asyncio.sleep(args.interval)

    print("| t (s) | rate seen | rate predicted | workers | target | TTFT att. | TPOT att. | reason |")
    print("|---|---|---|---|---|---|---|---|")
    planner_task = asyncio.create_task(plan())
    await load()
    planner_task.cancel()
    await loop.settle()
    for phase in (0, 1):
        rows = [r for r in results if r[0] == phase]
        ok = [r for r in rows if r[3] and r[1] <= config.ttft_slo_s and r[2] <= config.tpot_slo_s]
        print(
            f"phase {phase} (rate {args.rate * (phase + 1)}/s): {len(rows)} requests, "
            f"SLO attainment {len(ok) / max(1, len(rows)):.2f}, failed {sum(not r[3] for r in rows)}"
        )
    await admin.aclose()
    await service.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", required=True)
    parser.add_argument("--rate", type=float, default=0.5)
    parser.add_argument("--phase", type=float, default=60.0)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--ttft-slo-ms", type=float, default=2000)
    parser.add_argument("--tpot-slo-ms", type=float, default=150)
    parser.add_argument("--max-workers", type=int, default=3)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--log", default="planner_decisions.jsonl")
    asyncio.run(main(parser.parse_args()))
