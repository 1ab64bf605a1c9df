"""Replicas behind the router: `ponder bench` on a multi-turn shared-prefix workload and on a
single-turn random one, per routing policy (one fresh router + N replicas per policy). Reports
TTFT, throughput, the replicas' prefix-cache hit rate and per-replica request counts.

    python benchmarks/replicas.py --replicas 2 --num-prompts 32 > docs/results/replicas-raw.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.router._cluster import RouterProcess  # noqa: E402

WORKLOADS = {
    "multi-turn": [
        "--dataset",
        "multi-turn",
        "--num-turns",
        "4",
        "--random-input-len",
        "64",
        "--random-prefix-ratio",
        "1.0",
    ],
    "random": ["--dataset", "random", "--random-input-len", "256"],
}


def prefix_counters(router: RouterProcess, n: int) -> tuple[float, float]:
    hits = queries = 0.0
    for index in range(n):
        for line in httpx.get(f"{router.url}/replicas/{index}/metrics", timeout=10).text.splitlines():
            if line.startswith("ponder:prefix_cache_hits"):
                hits += float(line.split()[-1])
            elif line.startswith("ponder:prefix_cache_queries"):
                queries += float(line.split()[-1])
    return hits, queries


def bench(router: RouterProcess, workload: list[str], args: argparse.Namespace, out: Path, name: str) -> dict:
    command = [
        sys.executable,
        "-m",
        "ponder",
        "bench",
        "--base-url",
        router.url,
        "--endpoint",
        "/v1/completions",
        "--model",
        "ponder",
        "--num-prompts",
        str(args.num_prompts),
        "--random-output-len",
        str(args.output_len),
        "--ignore-eos",
        "--max-concurrency",
        str(args.concurrency),
        "--num-warmups",
        "0",
        "--result-dir",
        str(out),
        "--result-name",
        name,
        "--no-plots",
        "--no-progress",
        *workload,
    ]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return json.loads((out / f"{name}.json").read_text())["runs"][0]["summary"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--num-prompts", type=int, default=32)
    parser.add_argument("--output-len", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--policies", default="round-robin,least-load,kv-aware")
    parser.add_argument("--workloads", default="multi-turn,random")
    parser.add_argument("--kv-cache-memory", default="32MiB", help="per replica")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp())
    print("| workload | policy | prefix hit rate | TTFT p50 ms | TTFT p99 ms | req/s | tok/s | per-replica |")
    print("|---|---|---|---|---|---|---|---|")
    for workload in args.workloads.split(","):
        flags = WORKLOADS[workload]
        for policy in args.policies.split(","):
            router = RouterProcess(
                "--router-policy", policy, "--kv-cache-memory", args.kv_cache_memory, replicas=args.replicas
            )
            try:
                before = prefix_counters(router, args.replicas)
                routed0 = [r["routed"] for r in router.replicas()]
                summary = bench(router, flags, args, out, f"{workload}-{policy}")
                time.sleep(0.5)
                hits, queries = (a - b for a, b in zip(prefix_counters(router, args.replicas), before))
                counts = [r["routed"] - r0 for r, r0 in zip(router.replicas(), routed0)]
            finally:
                router.close()
            ttft = summary["ttft_ms"]
            print(
                f"| {workload} | {policy} | {hits / max(queries, 1):.1%} | {ttft['median']:.0f} | "
                f"{ttft['p99']:.0f} | {summary['request_throughput']:.2f} | "
                f"{summary['total_token_throughput']:.0f} | {'/'.join(map(str, counts))} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
