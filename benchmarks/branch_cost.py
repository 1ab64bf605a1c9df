"""Cost of parallel branches on the CPU: n sampled branches of one prompt against one greedy thought.

The issue-7 target: 16 parallel branches take at most 3x the wall time of one thought on a CPU
(one shared prefill, one batched decode). Every run makes exactly --tokens tokens per branch
(eos ignored) with the built-in model on a hard arithmetic question, so only the cost per step
differs, not the thoughts' lengths. After a warm-up of each, the runs take turns for --repeats
rounds; prints one JSON line per engine: median seconds of one thought, of n branches, and
their ratio. --baseline-src also runs another ponder version's engine (a `git archive` of an
older commit's src/), taking turns in this process, as a same-run baseline.

Usage (repo root):
    PYTHONPATH=src OMP_NUM_THREADS=2 python benchmarks/branch_cost.py [--branches 16]
        [--tokens 400] [--repeats 3] [--threads 2] [--baseline-src OLD/src]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from host_overhead import ROOT, activate, load_ponder, ponder_modules

from ponder.tasks import generate

MODEL = ROOT / "src" / "ponder" / "assets" / "ponder-reasoner"  # the same weights for every engine


def timed_chat(llm, messages: list, params) -> float:
    started = time.perf_counter()
    llm.chat(messages, params)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--branches", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--baseline-src", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    packages = {"current": ponder_modules()}
    if args.baseline_src is not None:
        packages = {"baseline": load_ponder(args.baseline_src), **packages}
    question = generate("arithmetic", "hard", 1, seed=0)[0].question
    messages = [[{"role": "user", "content": question}]]
    engines, params = {}, {}
    for name, modules in packages.items():
        activate(modules)
        sampling = modules["ponder"].SamplingParams
        params[name] = {
            "one": sampling(temperature=0.0, max_tokens=args.tokens, ignore_eos=True),
            "many": sampling(
                n=args.branches, temperature=0.8, max_tokens=args.tokens, ignore_eos=True, seed=0
            ),
        }
        engines[name] = modules["ponder"].LLM(str(MODEL), dtype="float32")
        for kind in ("one", "many"):  # warm-up, including the allocations n branches need
            timed_chat(engines[name], messages, params[name][kind])
    seconds: dict[str, dict[str, list[float]]] = {name: {"one": [], "many": []} for name in packages}
    for _ in range(args.repeats):
        for name, modules in packages.items():
            activate(modules)
            for kind in ("one", "many"):
                seconds[name][kind].append(timed_chat(engines[name], messages, params[name][kind]))
    for name in packages:
        one, many = (statistics.median(seconds[name][kind]) for kind in ("one", "many"))
        row = {
            "engine": name,
            "branches": args.branches,
            "tokens": args.tokens,
            "threads": args.threads,
            "one_thought_s": round(one, 2),
            "branches_s": round(many, 2),
            "ratio": round(many / one, 2),
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
