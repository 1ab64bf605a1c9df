"""Why load-aware routing loses TTFT p50 to round-robin on single-turn random prompts: the real
policies against simulated replicas that step like ponder's scheduler (each step: running
sequences first, in arrival order, a 256-token budget; a sequence in prefill takes a chunk, one
in decode one token; step time = 5 ms + 0.12 ms per token; the step that finishes a prompt
samples its first token). A closed loop of 2 clients per replica sends 300 prompts of 280-320
tokens, 8 output tokens each. `--release-prefill` also counts a request's prompt as load only
until its first token (the router does not do that yet: docs/results/replicas.md).

    python benchmarks/router_step_sim.py
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import random
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from ponder.router.balancer import Assignment, Balancer  # noqa: E402
from ponder.router.policies import ReplicaState, RoutedRequest, make_policy  # noqa: E402
from ponder.router.prefix import prompt_block_hashes  # noqa: E402

BS, BUDGET, STEP_MS, TOKEN_MS = 16, 256, 5.0, 0.12


@dataclass
class Seq:
    prompt_left: int
    out_left: int
    arrival: float
    assignment: Assignment


@dataclass
class Replica:
    seqs: list[Seq] = field(default_factory=list)
    plan: list[tuple[Seq, int]] = field(default_factory=list)
    busy: bool = False


def prefilled(a: Assignment) -> None:
    """The prompt is computed: only its output blocks / tokens stay counted."""
    blocks = a.request.prompt_blocks - a.cached_blocks
    a.replica.active_blocks -= blocks
    a.added_blocks -= blocks
    a.replica.outstanding_tokens -= a.request.prompt_tokens
    a.request = RoutedRequest(0, a.request.max_tokens, BS)


def run(policy_name: str, n: int, requests: int, seed: int, release_prefill: bool) -> tuple[float, float]:
    rng = random.Random(seed)
    states = [ReplicaState(i, f"r{i}") for i in range(n)]
    balancer = Balancer(states, make_policy(policy_name))
    replicas = [Replica() for _ in range(n)]
    events: list[tuple[float, int, str, object]] = []
    order = itertools.count()
    ttfts: list[float] = []
    e2e: list[float] = []
    sent = 0

    def submit(now: float) -> None:
        nonlocal sent
        if sent < requests:
            sent += 1
            tokens = [rng.randrange(1, 50_000) for _ in range(rng.randint(280, 320))]
            heapq.heappush(events, (now, next(order), "arrive", tokens))

    def step(i: int, now: float) -> None:
        replica, left = replicas[i], BUDGET
        replica.plan = []
        for seq in replica.seqs:
            if left <= 0:
                break
            take = min(seq.prompt_left, left) if seq.prompt_left else 1
            replica.plan.append((seq, take))
            left -= take
        replica.busy = bool(replica.plan)
        if replica.busy:
            heapq.heappush(events, (now + STEP_MS + TOKEN_MS * (BUDGET - left), next(order), "step", i))

    for _ in range(2 * n):
        submit(0.0)
    while events:
        now, _, kind, what = heapq.heappop(events)
        if kind == "arrive":
            tokens = what
            assert isinstance(tokens, list)
            routed = RoutedRequest(len(tokens), 8, BS, tuple(prompt_block_hashes(tokens, BS)))
            assignment = balancer.assign(routed)
            index = assignment.replica.index
            replicas[index].seqs.append(Seq(len(tokens), 8, now, assignment))
            if not replicas[index].busy:
                step(index, now)
            continue
        assert isinstance(what, int)
        for seq, take in replicas[what].plan:
            if seq.prompt_left:
                seq.prompt_left -= take
                if seq.prompt_left == 0:
                    ttfts.append(now - seq.arrival)
                    seq.out_left -= 1
                    if release_prefill:
                        prefilled(seq.assignment)
            else:
                seq.out_left -= 1
            if not seq.prompt_left and seq.out_left <= 0:
                replicas[what].seqs.remove(seq)
                seq.assignment.release()
                e2e.append(now - seq.arrival)
                submit(now)
        step(what, now)
    return statistics.median(ttfts), statistics.mean(e2e)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--release-prefill", action="store_true")
    args = parser.parse_args()
    print("| N | policy | TTFT p50 ms per seed | mean e2e ms |\n|---|---|---|---|")
    for n in (2, 4):
        for name in ("round-robin", "least-load", "kv-aware"):
            runs = [run(name, n, args.requests, s, args.release_prefill) for s in range(args.seeds)]
            p50 = " / ".join(f"{r[0]:.0f}" for r in runs)
            print(f"| {n} | {name} | {p50} | {statistics.mean(r[1] for r in runs):.0f} |")


if __name__ == "__main__":
    main()
