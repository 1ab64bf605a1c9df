"""`ponder sim`: predict TTFT/TPOT/goodput of a cluster for a workload, and the best P:D split."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from ponder.errors import InvalidRequestError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("sim", help="simulate a cluster from a `ponder profile` profile")
    p.add_argument(
        "--profile", required=True, help="colocated workers' (and, by default, P/D workers') profile"
    )
    p.add_argument("--prefill-profile", default=None, help="the prefill workers' own profile")
    p.add_argument("--decode-profile", default=None, help="the decode workers' own profile")
    p.add_argument("--colocated", type=int, default=1)
    p.add_argument("--prefill", type=int, default=0)
    p.add_argument("--decode", type=int, default=0)
    p.add_argument(
        "--recommend-pd", type=int, default=0, metavar="TOTAL", help="sweep P:D splits of TOTAL workers"
    )
    p.add_argument("--router", default="least_loaded", choices=["least_loaded", "round_robin"])
    p.add_argument("--rate", type=float, default=1.0)
    p.add_argument("--num-requests", type=int, default=500)
    p.add_argument("--input-len", type=int, default=256)
    p.add_argument("--output-len", type=int, default=128)
    p.add_argument("--spread", type=float, default=0.0, help="lengths uniform in mean*(1±spread)")
    p.add_argument("--dataset", default=None, help="JSONL of input_len/output_len[/arrival]")
    p.add_argument("--max-num-batched-tokens", type=int, default=2048)
    p.add_argument("--max-num-seqs", type=int, default=256)
    p.add_argument("--kv-tokens", type=int, default=0, help="KV pool per worker in tokens (0: unlimited)")
    p.add_argument("--block-size", type=int, default=16)
    p.add_argument("--kv-transfer-ms", type=float, default=0.0)
    p.add_argument("--kv-transfer-us-per-token", type=float, default=0.0)
    p.add_argument(
        "--kv-failed-share",
        type=float,
        default=0.0,
        help="share of hand-offs that fail: the decode worker waits --kv-timeout-s, then recomputes",
    )
    p.add_argument("--kv-timeout-s", type=float, default=10.0)
    p.add_argument("--ttft-slo-ms", type=float, default=1000.0)
    p.add_argument("--tpot-slo-ms", type=float, default=100.0)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ponder.profiling.step_model import StepModel
    from ponder.sim.cluster import ClusterSpec
    from ponder.sim.report import run as run_sim
    from ponder.sim.report import sweep_pd
    from ponder.sim.workload import from_jsonl, poisson

    model = StepModel.load(args.profile)
    prefill_model = StepModel.load(args.prefill_profile) if args.prefill_profile else None
    decode_model = StepModel.load(args.decode_profile) if args.decode_profile else None
    if args.dataset:
        reqs = from_jsonl(args.dataset, args.rate, args.seed)
    else:
        reqs = poisson(args.rate, args.num_requests, args.input_len, args.output_len, args.spread, args.seed)
    spec = ClusterSpec(
        colocated=args.colocated,
        prefill=args.prefill,
        decode=args.decode,
        budget=args.max_num_batched_tokens,
        max_seqs=args.max_num_seqs,
        router=args.router,
        kv_tokens=args.kv_tokens,
        block_size=args.block_size,
        kv_transfer_s=args.kv_transfer_ms / 1e3,
        kv_transfer_s_per_token=args.kv_transfer_us_per_token / 1e6,
        kv_failed_share=args.kv_failed_share,
        kv_timeout_s=args.kv_timeout_s,
    )
    slo = (args.ttft_slo_ms / 1e3, args.tpot_slo_ms / 1e3)
    if args.recommend_pd:
        if args.recommend_pd < 2:
            raise InvalidRequestError("--recommend-pd needs at least 2 workers", param="recommend_pd")
        results = sweep_pd(reqs, args.recommend_pd, spec, model, *slo, prefill_model, decode_model)
        for name, rep in results:
            print(
                f"{name:>16}  attainment {rep.attainment:6.1%}  goodput {rep.goodput:8.2f} req/s  "
                f"TTFT p95 {rep.ttft['p95'] * 1e3:9.1f} ms  TPOT p95 {rep.tpot['p95'] * 1e3:7.2f} ms"
            )
        print(f"recommended: {results[0][0]}")
        return 0
    if spec.disaggregated:
        front = prefill_model or model
        report = run_sim(reqs, spec, front, *slo, decode_model or front)
    else:
        report = run_sim(reqs, spec, model, *slo)
    print(json.dumps(asdict(report), indent=2))
    return 0
