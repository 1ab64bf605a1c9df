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

On a quiet many-core host (no GPU use): `--preset quiet --cpus 2-9 --out DIR` runs 2 and 4
replicas x the 3 policies x both workloads, 2 repeats interleaved, with the router, the bench
client and each replica pinned to disjoint cores; DIR gets replicas.json and replicas.md. Runs
from a plain checkout: `PYTHONPATH=src python3 benchmarks/replicas.py ...` (no console script).
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
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "src"))
# every process this spawns (`python -m ponder serve|bench`) imports ponder from this checkout
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
from tests.router._cluster import RouterProcess  # noqa: E402

from ponder.assets import default_model_dir  # noqa: E402
from ponder.bench.config import Workload  # noqa: E402
from ponder.bench.datasets import load_prompts  # noqa: E402
from ponder.engine.tokenizer import Tokenizer  # noqa: E402

BLOCK_SIZE = 16
# --preset quiet: sized to finish in <= 7 minutes on 8 free cores (see docs/results/replicas.md)
PRESETS = {
    "quiet": {
        "replicas": "2,4",
        "repeats": 2,
        "conversations": 15,
        "turns": 4,
        "first_turn_len": 100,
        "random_len": 60,
        "random_prompts": 40,
        "max_seconds": 400,
        "output_len": 8,
        "policies": "round-robin,least-load,kv-aware",
        "workloads": "multi-turn,random",
    }
}


def parse_cpus(text: str) -> list[int]:
    """`2-9` or `2,3,8-11` -> the core ids, in order."""
    cpus: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        cpus += range(int(low), int(high or low) + 1)
    if len(set(cpus)) != len(cpus):
        raise SystemExit(f"--cpus {text}: a core is listed twice")
    return cpus


@dataclass
class CpuPlan:
    """Disjoint cores: one for the router, one for the bench client, the rest split evenly over
    the replicas (a remainder stays idle, so every replica gets the same)."""

    router: list[int]
    client: list[int]
    replicas: list[list[int]]

    @classmethod
    def split(cls, cpus: list[int], replicas: int) -> CpuPlan:
        per = (len(cpus) - 2) // replicas
        if per < 1:
            raise SystemExit(f"--cpus: {len(cpus)} cores for {replicas} replicas; need >= {replicas + 2}")
        rest = cpus[2:]
        return cls([cpus[0]], [cpus[1]], [rest[i * per : (i + 1) * per] for i in range(replicas)])


def pin_process(pid: int, cpus: list[int]) -> None:
    """Every thread of `pid` (a thread's affinity is its own: pinning the pid alone would leave
    the threads it already started, e.g. torch's, on the old cores); later threads inherit it."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except ProcessLookupError:
            pass  # the thread ended meanwhile


def pin_router(router: RouterProcess, plan: CpuPlan) -> None:
    pin_process(router.process.pid, plan.router)
    for replica, cpus in zip(router.replicas(), plan.replicas):
        pin_process(int(replica["pid"]), cpus)


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
            f"--num-prompts={args.random_prompts or num_prompts}",
            f"--random-input-len={args.random_len}",
            "--seed=1",  # not the multi-turn's words: the two run on one router, one after the other
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


def bench(
    router: RouterProcess, n: int, flags: list[str], args: argparse.Namespace, out: Path, name: str
) -> dict:
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
        f"--max-concurrency={args.concurrency or 2 * n}",
        "--num-warmups=0",
        f"--result-dir={out}",
        f"--result-name={name}",
        "--no-plots",
        "--no-progress",
        *flags,
    ]
    plan = args.plans.get(n)
    pin = (lambda: os.sched_setaffinity(0, plan.client)) if plan else None
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, preexec_fn=pin)
    return json.loads((out / f"{name}.json").read_text())["runs"][0]["summary"]


def start_router(n: int, policy: str, args: argparse.Namespace) -> RouterProcess:
    router = RouterProcess(
        "--router-policy",
        policy,
        "--kv-aware-weight",
        str(args.kv_aware_weight),
        "--num-kv-blocks",
        str(args.kv_blocks[n]),
        "--max-model-len",  # a small pool must still admit max_model_len: cap it, not below a prompt
        str(min(args.max_model_len, args.kv_blocks[n] * BLOCK_SIZE)),
        replicas=n,
    )
    if n in args.plans:
        pin_router(router, args.plans[n])
    return router


def run_row(
    router: RouterProcess,
    n: int,
    workload: str,
    flags: list[str],
    policy: str,
    args: argparse.Namespace,
    out: Path,
    name: str,
) -> dict:
    before = counters(router, n)
    routed0 = [r["routed"] for r in router.replicas()]
    summary = bench(router, n, flags, args, out, name)
    time.sleep(0.5)
    after = counters(router, n)
    counts = [r["routed"] - r0 for r, r0 in zip(router.replicas(), routed0)]
    delta = {k: after[k] - before[k] for k in after}
    return {
        "replicas": n,
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
        "balance": max(counts) / max(min(counts), 1),
        "load": os.getloadavg()[1],  # the host's 5-minute load average: how shared the row ran
    }


HEADER = (
    "| rep | N | workload | policy | prefix hit rate | router's estimate | TTFT p50 ms | TTFT p99 ms "
    "| req/s | tok/s | per-replica | max/min | load avg |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def format_row(row: dict) -> str:
    return (
        f"| {row['rep']} | {row['replicas']} | {row['workload']} | {row['policy']} | {row['hit_rate']:.1%} | "
        f"{row['router_hit_rate']:.1%} | "
        f"{row['ttft_p50']:.0f} | {row['ttft_p99']:.0f} | {row['req_s']:.2f} | {row['tok_s']:.0f} | "
        f"{'/'.join(map(str, row['counts']))} | {row['balance']:.2f} | {row['load']:.1f} |"
    )


def verdict(rows: list[dict]) -> list[dict]:
    """Per (N, workload, policy): the median over repeats of TTFT p50, and round-robin's / it."""
    summary = []
    for n, workload in dict.fromkeys((r["replicas"], r["workload"]) for r in rows):
        group = [r for r in rows if r["replicas"] == n and r["workload"] == workload]
        medians = {
            policy: statistics.median(r["ttft_p50"] for r in group if r["policy"] == policy)
            for policy in dict.fromkeys(r["policy"] for r in group)
        }
        base = medians.get("round-robin")
        for policy, value in medians.items():
            mine = [r for r in group if r["policy"] == policy]
            summary.append(
                {
                    "replicas": n,
                    "workload": workload,
                    "policy": policy,
                    "ttft_p50_median": value,
                    "rr_over_policy": base / value if base and value else None,
                    "worst_balance": max(r["balance"] for r in mine),
                    "hit_rate_median": statistics.median(r["hit_rate"] for r in mine),
                }
            )
    return summary


def format_verdict(summary: list[dict]) -> str:
    lines = [
        "| N | workload | policy | TTFT p50 ms (median of repeats) | round-robin / policy "
        "| worst max/min | hit rate (median) |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        ratio = f"{s['rr_over_policy']:.2f}x" if s["rr_over_policy"] else "-"
        lines.append(
            f"| {s['replicas']} | {s['workload']} | {s['policy']} | {s['ttft_p50_median']:.0f} | {ratio} "
            f"| {s['worst_balance']:.2f} | {s['hit_rate_median']:.1%} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", choices=sorted(PRESETS), help="sizes and rows of a named run")
    parser.add_argument("--replicas", default="2", help="replica counts, comma separated (2,4)")
    parser.add_argument("--conversations", type=int, default=15, help="not a multiple of --replicas")
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument(
        "--first-turn-len", type=int, default=150, help="words of each conversation's first message"
    )
    parser.add_argument(
        "--turn-len", type=int, default=16, help="words of each later message (and the system prompt)"
    )
    parser.add_argument("--random-len", type=int, default=100, help="words of a random-workload prompt")
    parser.add_argument(
        "--random-prompts", type=int, help="requests of the random workload (default: as multi-turn)"
    )
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
    parser.add_argument(
        "--cpus",
        help="cores to use, e.g. 2-9: the router, the bench client and each replica get disjoint "
        "ones (1, 1, and (len - 2) / N each); replicas get OMP_NUM_THREADS = their cores",
    )
    parser.add_argument("--out", type=Path, help="write replicas.json and replicas.md here")
    parser.add_argument(
        "--max-seconds",
        type=float,
        help="start no router that would likely end after this (rows left out are listed)",
    )
    args = parser.parse_args()
    if args.preset:  # the preset's sizes win over the defaults, not over flags given explicitly
        given = {a.split("=")[0].lstrip("-").replace("-", "_") for a in sys.argv[1:] if a.startswith("--")}
        for key, value in PRESETS[args.preset].items():
            if key not in given:
                setattr(args, key, value)
    counts = [int(n) for n in str(args.replicas).split(",")]
    for n in counts:
        if args.conversations % n == 0:
            print(f"warning: {args.conversations} conversations on {n} replicas: round-robin is sticky")
    working_set, longest, ideal = multi_turn_shape(args)
    args.kv_blocks = {n: args.num_kv_blocks or math.ceil(args.pool_slack * working_set / n) for n in counts}
    for n, blocks in args.kv_blocks.items():
        if blocks * BLOCK_SIZE < longest + args.output_len:
            raise SystemExit(f"{n} replicas: {blocks} KV blocks cannot hold the longest prompt ({longest})")
    args.plans = {}
    if args.cpus:
        cpus = parse_cpus(args.cpus)
        args.plans = {n: CpuPlan.split(cpus, n) for n in counts}
        os.sched_setaffinity(0, cpus)  # what the router and replicas start on, before pinning
    started = time.monotonic()
    policies = args.policies.split(",")
    chosen = [w for w in workloads(args) if w in args.workloads.split(",")]
    out = Path(tempfile.mkdtemp())
    rows: list[dict] = []
    skipped: list[str] = []
    routers = 0
    print(
        f"replicas {counts}, KV blocks per replica {args.kv_blocks} of {BLOCK_SIZE} tokens; multi-turn: "
        f"{args.conversations} conversations x {args.turns} turns, working set {working_set} blocks, "
        f"longest prompt {longest} tokens, hit rate if every conversation stays put {ideal:.1%}; "
        f"cpus {args.cpus or 'any'}\n"
    )
    print(HEADER)
    for rep in range(args.repeats):
        order = policies[rep % len(policies) :] + policies[: rep % len(policies)]  # no policy always first
        for n in counts:
            # One intra-op thread per core a replica has (1 when unpinned): replicas share the host's
            # cores instead of oversubscribing them.
            plan = args.plans.get(n)
            os.environ["OMP_NUM_THREADS"] = str(len(plan.replicas[0]) if plan else 1)
            for policy in order:
                spent = time.monotonic() - started
                if args.max_seconds and routers and spent + spent / routers > args.max_seconds:
                    skipped.append(f"rep {rep}, {n} replicas, {policy}")
                    continue
                routers += 1
                # one router + N fresh replicas per (rep, N, policy); its workloads run one after the
                # other (their prompts share nothing, and each row counts its own deltas)
                router = start_router(n, policy, args)
                try:
                    for workload in chosen:
                        name = f"{n}-{workload}-{policy}-{rep}"
                        row = run_row(router, n, workload, workloads(args)[workload], policy, args, out, name)
                        row["rep"] = rep
                        rows.append(row)
                        print(format_row(row), flush=True)
                        if row["failed"]:
                            print(f"  ^ {row['failed']} requests failed", flush=True)
                finally:
                    router.close()
                print(f"  ({time.monotonic() - started:.0f} s so far)", flush=True)
    elapsed = time.monotonic() - started
    if skipped:
        print(f"left out (--max-seconds {args.max_seconds:.0f}): {'; '.join(skipped)}")
    summary = verdict(rows)
    print(f"\nmedian over repeats ({elapsed:.0f} s in all):")
    print(format_verdict(summary))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        config = {k: v for k, v in vars(args).items() if k not in ("plans", "out")}
        config["plans"] = {n: vars(p) for n, p in args.plans.items()}
        config["ideal_hit_rate"] = ideal
        result = {
            "config": config,
            "elapsed_s": elapsed,
            "rows": rows,
            "summary": summary,
            "left_out": skipped,
        }
        (args.out / "replicas.json").write_text(json.dumps(result, indent=1, default=str))
        (args.out / "replicas.md").write_text(
            f"{' '.join(sys.argv)}\n\n{HEADER}\n"
            + "\n".join(format_row(r) for r in rows)
            + f"\n\n{format_verdict(summary)}\n\n{elapsed:.0f} s in all"
            + (f"; left out: {'; '.join(skipped)}" if skipped else "")
            + "\n"
        )
        print(f"wrote {args.out / 'replicas.json'} and {args.out / 'replicas.md'}")


if __name__ == "__main__":
    main()
