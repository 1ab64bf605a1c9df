"""Speculative decoding speed-up on the built-in model: tokens/s with and without it, same run.

Usage (CPU, from the repo root):
    nice -n 10 python benchmarks/speculative.py [--batch-sizes 1 8] [--max-tokens 160]
        [--repeats 3] [--num-speculative-tokens 4] [--draft-layers 2] [--threads N] [--json OUT.json]

Workloads:
  repetitive  greedy answers to hard arithmetic items: the model's chain of thought restates
              numbers and re-checks steps (the case n-gram lookup is for)
  sampled     the same kind of prompts (word problems) sampled at temperature 1.0: text that
              rarely repeats, where the adaptive switch must keep speculation from costing
Configurations: baseline (no speculation), ngram, draft (builtin-small: the built-in model cut
to --draft-layers layers), baseline2 (another plain engine: how far two identical configurations
read apart on this machine). Every (workload, batch size) runs each configuration in turn, once
per repeat (interleaved, so load changes on a shared machine hit all of them alike); the table
gives the median tokens/s of the repeats and its ratio to the baseline's. Greedy outputs are
checked to be identical across configurations.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from dataclasses import dataclass, field

import torch

from ponder import LLM
from ponder.engine.sampling_params import SamplingParams
from ponder.tasks import generate as task_items

POOL = {"num_kv_blocks": 1024, "max_model_len": 2048}


@dataclass
class Cell:
    seconds: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    drafts: int = 0
    accepted: int = 0
    verifications: int = 0
    emitted: int = 0

    @property
    def tokens_per_s(self) -> float:
        return statistics.median(t / s for t, s in zip(self.tokens, self.seconds))


def prompts(workload: str, batch_size: int) -> list[list[dict[str, str]]]:
    family = "arithmetic" if workload == "repetitive" else "word_problems"
    items = task_items(family, "hard", batch_size, seed=3)
    return [[{"role": "user", "content": item.question}] for item in items]


def params(workload: str, max_tokens: int) -> SamplingParams:
    if workload == "repetitive":
        return SamplingParams(temperature=0.0, max_tokens=max_tokens)
    # ignore_eos: every configuration generates the same number of tokens (sampled text differs)
    return SamplingParams(temperature=1.0, max_tokens=max_tokens, seed=0, ignore_eos=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--num-speculative-tokens", type=int, default=4)
    parser.add_argument("--draft-layers", type=int, default=2)
    parser.add_argument("--workloads", nargs="+", default=["repetitive", "sampled"])
    parser.add_argument("--configs", nargs="+", default=["baseline", "ngram", "draft"])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--json", default=None, help="write the raw figures here")
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="cpu: tokens per CPU-second of this process (with --threads 1 that is wall time on a "
        "quiet machine, and far steadier on a shared one)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    clock = time.perf_counter if args.clock == "wall" else time.process_time
    engines = {}
    for name in args.configs:
        knobs = dict(POOL)
        if not name.startswith("baseline"):  # baseline2: a second plain engine (the noise floor)
            knobs |= {"speculative_method": name, "num_speculative_tokens": args.num_speculative_tokens}
            knobs |= {"speculative_draft_layers": args.draft_layers} if name == "draft" else {}
        engines[name] = LLM(**knobs)
        engines[name].chat(prompts("repetitive", 1), params("repetitive", 8))  # warm-up
    cells: dict[tuple[str, int, str], Cell] = {}
    for repeat in range(args.repeats):
        for workload in args.workloads:
            for batch_size in args.batch_sizes:
                batch, sampling = prompts(workload, batch_size), params(workload, args.max_tokens)
                outputs = {}
                for name, llm in engines.items():
                    cell = cells.setdefault((workload, batch_size, name), Cell())
                    before = llm.engine.stats()
                    start = clock()
                    results = llm.chat(batch, sampling)
                    cell.seconds.append(clock() - start)
                    after = llm.engine.stats()
                    cell.tokens.append(sum(len(r.outputs[0].token_ids) for r in results))
                    cell.drafts += after.spec_draft_tokens - before.spec_draft_tokens
                    cell.accepted += after.spec_accepted_tokens - before.spec_accepted_tokens
                    cell.verifications += after.spec_verifications - before.spec_verifications
                    cell.emitted += after.spec_emitted_tokens - before.spec_emitted_tokens
                    outputs[name] = [list(r.outputs[0].token_ids) for r in results]
                if workload == "repetitive":
                    reference = next(iter(outputs.values()))
                    assert all(out == reference for out in outputs.values()), "greedy outputs differ"
                print(f"repeat {repeat + 1}/{args.repeats} {workload} batch {batch_size} done", flush=True)
    print()
    print(
        f"CPU ({platform.processor() or platform.machine()}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; K={args.num_speculative_tokens}, "
        f"max_tokens={args.max_tokens}, {args.repeats} repeats (median), {args.clock} clock"
    )
    print("| workload | batch | config | tokens/s | vs baseline | acceptance | tokens/verify | drafts |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for (workload, batch_size, name), cell in cells.items():
        base = cells[(workload, batch_size, "baseline")].tokens_per_s if "baseline" in engines else None
        ratio = f"{cell.tokens_per_s / base:.2f}x" if base else "-"
        acceptance = f"{cell.accepted / cell.drafts:.2f}" if cell.drafts else "-"
        per_verify = f"{cell.emitted / cell.verifications:.2f}" if cell.verifications else "-"
        print(
            f"| {workload} | {batch_size} | {name} | {cell.tokens_per_s:.1f} | {ratio} | {acceptance} "
            f"| {per_verify} | {cell.drafts} |"
        )
        rows.append({"workload": workload, "batch_size": batch_size, "config": name, **cell.__dict__})
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"args": vars(args), "rows": rows}, handle, indent=2)


if __name__ == "__main__":
    main()
