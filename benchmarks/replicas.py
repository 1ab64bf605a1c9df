"""Replicas behind the router: `ponder bench` per routing policy on a multi-turn workload and on
a single-turn random one (one fresh router + N replicas per row). Reports the replicas' prefix
hit rate, the router's own estimate of it, TTFT, throughput and per-replica request counts.

The multi-turn workload is sized so the router's choice matters: every conversation opens with
its own long first message (--first-turn-len words, a document it is about), later turns add
short messages, outputs are short (prefill dominates TTFT), and each replica's KV pool
(--num-kv-blocks) holds about 1/N of all conversations' KV (x --pool-slack): the N pools together
keep every conversation, one pool does not. A policy that keeps a conversation on the replica
holding its KV reuses it; one that spreads its turns recomputes. The conversation count must not
be a multiple of N, else round-robin sends every turn of a conversation to one replica by
accident. Rows are repeated (--repeats) with the policy order rotated, so noise shows.

    nice -n 10 python benchmarks/replicas.py --replicas 2
    nice -n 10 python benchmarks/replicas.py --replicas 4
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.router._cluster import RouterProcess  # noqa: E402

from ponder.assets import default_model_dir  # noqa: E402
from ponder.bench.config import Workload  # noqa: E402
from ponder.bench.datasets import load_prompts  # noqa: E402
from ponder.engine.tokenizer import Tokenizer  # noqa: E402

BLOCK_SIZE = 16


def workloads(args: argparse.Namespace) -> dict[str, list[str]]:
    num_prompts = str(args.conversations * args.turns)
    return {
        "multi-turn": [
            "--dataset=multi-turn",
            f"--num-prompts={num_prompts}",
            f"--num-turns={args.turns}",
            f"--first-turn-len={args.first_turn_len}",
            f"--random-input-len={args.turn_len}",
            "--random-prefix-ratio=1.0",  # the shared system prompt: --turn-len words
        ],
        "random": [
            "--dataset=random",
            f"--num-prompts={num_prompts}",
            f"--random-input-len={args.random_len}",
        ],
    }


def multi_turn_shape(args: argparse.Namespace) -> tuple[int, int, float]:
    """KV blocks all conversations hold at their last turn (prompt + output), the longest prompt,
    and the prefix hit rate a policy gets that keeps every conversation where its KV is."""
    workload = Workload(
        dataset="multi-turn",
        num_prompts=args.conversations * args.turns,
        num_turns=args.turns,
        first_turn_len=args.first_turn_len,
        random_input_len=args.turn_len,
        random_output_len=args.output_len,
        random_prefix_ratio=1.0,
    )
    tokenizer = Tokenizer.from_dir(default_model_dir())
    ids = [tokenizer.encode(p.text) for p in load_prompts(workload, None)]
    c = args.conversations
    system = common_prefix(ids[0], ids[1]) if c > 1 else 0
    hits = 0
    for i, prompt in enumerate(ids):
        shared = system if i < c else common_prefix(ids[i - c], prompt)
        hits += min(shared, len(prompt) - 1) // BLOCK_SIZE * BLOCK_SIZE  # full blocks, never the last token
    working_set = sum(math.ceil((len(p) + args.output_len) / BLOCK_SIZE) for p in ids[-c:])
    return working_set, max(map(len, ids)), hits / sum(map(len, ids))


def common_prefix(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def metric_sum(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.split()[-1])
    return total


def counters(router: RouterProcess, n: int) -> dict[str, float]:
    """Replica prefix-cache tokens (hits, queries) and the router's view (hit, queried blocks)."""
    replica = [httpx.get(f"{router.url}/replicas/{i}/metrics", timeout=10).text for i in range(n)]
    own = httpx.get(f"{router.url}/metrics", timeout=10).text
    return {
        "hits": sum(metric_sum(t, "ponder:prefix_cache_hits") for t in replica),
        "queries": sum(metric_sum(t, "ponder:prefix_cache_queries") for t in replica),
        "router_hit": metric_sum(own, "ponder_router_prefix_blocks_total", kind="hit"),
        "router_queried": metric_sum(own, "ponder_router_prefix_blocks_total", kind="queried"),
    }


def bench(router: RouterProcess, flags: list[str], args: argparse.Namespace, out: Path, name: str) -> dict:
    command = [
        sys.executable,
        "-m",
        "ponder",
        "bench",
        f"--base-url={router.url}",
        "--endpoint=/v1/completions",
        "--model=ponder",
        f"--random-output-len={args.output_len}",
        "--ignore-eos",
        f"--max-concurrency={args.concurrency or 2 * args.replicas}",
        "--num-warmups=0",
        f"--result-dir={out}",
        f"--result-name={name}",
        "--no-plots",
        "--no-progress",
        *flags,
    ]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return json.loads((out / f"{name}.json").read_text())["runs"][0]["summary"]


def run_row(
    workload: str, flags: list[str], policy: str, args: argparse.Namespace, out: Path, name: str
) -> dict:
    router = RouterProcess(
        "--router-policy",
        policy,
        "--kv-aware-weight",
        str(args.kv_aware_weight),
        "--num-kv-blocks",
        str(args.num_kv_blocks),
        "--max-model-len",
        str(args.max_model_len),
        replicas=args.replicas,
    )
    try:
        before = counters(router, args.replicas)
        routed0 = [r["routed"] for r in router.replicas()]
        summary = bench(router, flags, args, out, name)
        time.sleep(0.5)
        after = counters(router, args.replicas)
        counts = [r["routed"] - r0 for r, r0 in zip(router.replicas(), routed0)]
    finally:
        router.close()
    delta = {k: after[k] - before[k] for k in after}
    return {
        "workload": workload,
        "policy": policy,
        "hit_rate": delta["hits"] / max(delta["queries"], 1),
        "router_hit_rate": delta["router_hit"] / max(delta["router_queried"], 1),
        "ttft_p50": summary["ttft_ms"]["median"],
        "ttft_p99": summary["ttft_ms"]["p99"],
        "req_s": summary["request_throughput"],
        "tok_s": summary["total_token_throughput"],
        "failed": summary.get("failed", 0),
        "counts": counts,
        "load": os.getloadavg()[1],  # the host's 5-minute load average: how shared the row ran
    }


def print_row(rep: int, row: dict) -> None:
    counts = row["counts"]
    balance = max(counts) / max(min(counts), 1)
    print(
        f"| {rep} | {row['workload']} | {row['policy']} | {row['hit_rate']:.1%} | "
        f"{row['router_hit_rate']:.1%} | "
        f"{row['ttft_p50']:.0f} | {row['ttft_p99']:.0f} | {row['req_s']:.2f} | {row['tok_s']:.0f} | "
        f"{'/'.join(map(str, counts))} | {balance:.2f} | {row['load']:.1f} |",
        flush=True,
    )


def print_verdict(rows: list[dict]) -> None:
    print("\nmedian over repeats (TTFT p50 ms; round-robin / policy):")
    for workload in dict.fromkeys(r["workload"] for r in rows):
        medians = {
            policy: statistics.median(
                r["ttft_p50"] for r in rows if r["workload"] == workload and r["policy"] == policy
            )
            for policy in dict.fromkeys(r["policy"] for r in rows)
        }
        base = medians.get("round-robin")
        for policy, value in medians.items():
            ratio = f"{base / value:.2f}x" if base else "-"
            print(f"  {workload:10s} {policy:12s} {value:8.0f} ms  rr/policy {ratio}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--conversations", type=int, default=15, help="not a multiple of --replicas")
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument(
        "--first-turn-len", type=int, default=150, help="words of each conversation's first message"
    )
    parser.add_argument(
        "--turn-len", type=int, default=16, help="words of each later message (and the system prompt)"
    )
    parser.add_argument("--random-len", type=int, default=100, help="words of a random-workload prompt")
    parser.add_argument("--output-len", type=int, default=8)
    parser.add_argument("--concurrency", type=int, help="requests in flight (default: 2 per replica)")
    parser.add_argument("--policies", default="round-robin,least-load,kv-aware")
    parser.add_argument("--workloads", default="multi-turn,random")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--kv-aware-weight", type=float, default=2.0)
    parser.add_argument(
        "--num-kv-blocks", type=int, help="per replica (default: the working set / N x slack)"
    )
    parser.add_argument("--pool-slack", type=float, default=1.3)
    parser.add_argument("--max-model-len", type=int, default=2048)
    args = parser.parse_args()
    if args.conversations % args.replicas == 0:
        print(
            f"warning: {args.conversations} conversations on {args.replicas} replicas: round-robin is sticky"
        )
    working_set, longest, ideal = multi_turn_shape(args)
    if args.num_kv_blocks is None:
        args.num_kv_blocks = math.ceil(args.pool_slack * working_set / args.replicas)
    # One intra-op thread per replica: N replicas share the host's cores instead of oversubscribing.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print(
        f"{args.replicas} replicas x {args.num_kv_blocks} KV blocks of {BLOCK_SIZE} tokens; multi-turn: "
        f"{args.conversations} conversations x {args.turns} turns, working set {working_set} blocks, "
        f"longest prompt {longest} tokens, hit rate if every conversation stays put {ideal:.1%}; "
        f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}\n"
    )
    print(
        "| rep | workload | policy | prefix hit rate | router's estimate | TTFT p50 ms | TTFT p99 ms "
        "| req/s | tok/s | per-replica | max/min | load avg |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    out = Path(tempfile.mkdtemp())
    policies = args.policies.split(",")
    rows = []
    for rep in range(args.repeats):
        order = (
            policies[rep % len(policies) :] + policies[: rep % len(policies)]
        )  # rotate: no policy always first
        for workload, flags in workloads(args).items():
            if workload not in args.workloads.split(","):
                continue
            for policy in order:
                row = run_row(workload, flags, policy, args, out, f"{workload}-{policy}-{rep}")
                rows.append(row)
                print_row(rep, row)
                if row["failed"]:
                    print(f"  ^ {row['failed']} requests failed", flush=True)
    print_verdict(rows)


if __name__ == "__main__":
    main()
