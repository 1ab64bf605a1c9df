"""`ponder planner`: the SLO planner in front of a router (docs/disaggregated.md, Planner)."""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("planner", help="scale prefill/decode workers to meet TTFT/TPOT SLOs")
    p.add_argument("--router", required=True, help="the router's base URL, e.g. http://127.0.0.1:8000")
    p.add_argument("--profile", required=True, help="`ponder profile` output (the step model)")
    p.add_argument("--ttft-slo-ms", type=float, required=True)
    p.add_argument("--tpot-slo-ms", type=float, required=True)
    p.add_argument("--mode", choices=("colocated", "disagg"), default="colocated")
    p.add_argument("--target-attainment", type=float, default=0.9)
    p.add_argument("--target-utilization", type=float, default=0.7)
    p.add_argument("--min-prefill", type=int, default=1)
    p.add_argument("--max-prefill", type=int, default=4)
    p.add_argument("--min-decode", type=int, default=1)
    p.add_argument("--max-decode", type=int, default=4)
    p.add_argument("--interval", type=float, default=10.0, help="seconds between decisions")
    p.add_argument("--scale-down-after", type=int, default=3, help="intervals in a row before one goes")
    p.add_argument("--ewma-alpha", type=float, default=0.5)
    p.add_argument("--drain-timeout", type=float, default=120.0)
    p.add_argument("--dry-run", action="store_true", help="print the decisions, change nothing")
    p.add_argument("--log-file", default=None, help="append each decision as a JSON line here")
    p.add_argument("--metrics-port", type=int, default=None, help="serve the planner's /metrics here")
    p.add_argument("--api-key", default=None, help="the router's admin API key, if it has one")
    p.add_argument("--iterations", type=int, default=None, help="stop after N decisions")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from ponder.planner.decide import Planner, PlannerConfig
    from ponder.planner.loop import PlannerLoop, RouterClient
    from ponder.profiling.step_model import StepModel

    config = PlannerConfig(
        ttft_slo_s=args.ttft_slo_ms / 1000,
        tpot_slo_s=args.tpot_slo_ms / 1000,
        mode=args.mode,
        target_attainment=args.target_attainment,
        target_utilization=args.target_utilization,
        min_prefill=args.min_prefill,
        max_prefill=args.max_prefill,
        min_decode=args.min_decode,
        max_decode=args.max_decode,
        ewma_alpha=args.ewma_alpha,
        scale_down_after=args.scale_down_after,
    )
    if args.interval <= 0:
        from ponder.errors import InvalidRequestError

        raise InvalidRequestError("--interval must be > 0", param="interval")
    planner = Planner(config, StepModel.load(args.profile))
    log = open(args.log_file, "a") if args.log_file else (sys.stdout if args.dry_run else None)

    async def main() -> None:
        loop = PlannerLoop(
            planner,
            RouterClient(args.router, api_key=args.api_key),
            dry_run=args.dry_run,
            log=log,
            drain_timeout_s=args.drain_timeout,
        )
        if args.metrics_port is not None:
            from prometheus_client import start_http_server

            start_http_server(args.metrics_port, registry=loop.metrics.registry)
        await loop.run(args.interval, args.iterations)
        await loop.settle()

    asyncio.run(main())
    return 0
