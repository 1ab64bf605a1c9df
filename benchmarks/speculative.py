"""Speculative decoding speed-up on the built-in model: tokens/s with and without it, same run.

Usage (from the repo root):
    nice -n 10 python benchmarks/speculative.py [--batch-sizes 1 8] [--max-tokens 160]
        [--repeats 3] [--num-speculative-tokens 4] [--draft-layers 2] [--threads N] [--out DIR]
    python benchmarks/speculative.py --preset quiet --out DIR      # <= 6 min on 2 pinned cores
    python benchmarks/speculative.py --preset gpu --out DIR        # CUDA, bf16, <= 3 min
    python benchmarks/speculative.py --preset smoke --out DIR      # seconds: does it run

Workloads:
  repetitive  greedy answers to hard arithmetic items: the model's chain of thought restates
              numbers and re-checks steps (the case n-gram lookup is for)
  sampled     the same kind of prompts (word problems) sampled at temperature 1.0: text that
              rarely repeats, where the adaptive switch must keep speculation from costing
Configurations: baseline (no speculation), ngram, draft (builtin-small: the built-in model cut
to --draft-layers layers), baseline2 (another plain engine: the A/A noise floor, how far two
identical configurations read apart), baseline-sync (plain, asynchronous scheduling off: on a
GPU speculation turns it off, so this separates the two effects).

Every (workload, batch size) runs each configuration once per round, in an order that rotates
from round to round (so neither load drift nor position favours one). Each round gives every
configuration a ratio to the baseline of the same round; the tables give the median of those
paired ratios with a bootstrap 95% interval (resampling rounds). A configuration is only told
apart from the baseline where its interval clears the A/A row's. Greedy outputs are checked to
be identical across configurations. With a --budget-s, rounds stop once the next would not fit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ponder import LLM
from ponder.engine.sampling_params import SamplingParams
from ponder.tasks import generate as task_items

POOL = {"num_kv_blocks": 1024, "max_model_len": 2048}
DEFAULTS: dict = {
    "batch_sizes": [1, 8],
    "max_tokens": 160,
    "repeats": 3,
    "num_speculative_tokens": 4,
    "draft_layers": 2,
    "workloads": ["repetitive", "sampled"],
    "configs": ["baseline", "ngram", "draft"],
    "threads": None,
    "clock": "wall",
    "device": "cpu",
    "dtype": None,
    "budget_s": None,
    "min_rounds": 3,
}
PRESETS: dict[str, dict] = {
    # The lead's quiet 16-core box, pinned to 2 cores: every cell, the A/A floor, <= 6 min.
    "quiet": {
        "batch_sizes": [1, 8],
        "max_tokens": 96,
        "repeats": 40,
        "configs": ["baseline", "ngram", "draft", "baseline2"],
        "threads": 2,
        "budget_s": 320,
        "min_rounds": 4,
    },
    # The built-in model on a GPU with CUDA graphs (the engine's default there): <= 3 min.
    "gpu": {
        "batch_sizes": [1, 8],
        "max_tokens": 256,
        "repeats": 40,
        "configs": ["baseline", "ngram", "baseline-sync", "baseline2"],
        "device": "cuda",
        "dtype": "bfloat16",
        "budget_s": 150,
        "min_rounds": 4,
    },
    # Seconds on any machine: the code paths, not the figures.
    "smoke": {
        "batch_sizes": [1, 2],
        "max_tokens": 12,
        "repeats": 2,
        "configs": ["baseline", "ngram", "draft", "baseline2"],
        "threads": 1,
        "min_rounds": 1,
    },
}
BOOTSTRAP_SAMPLES = 2000


@dataclass
class Cell:
    seconds: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    drafts: int = 0
    accepted: int = 0
    verifications: int = 0
    emitted: int = 0

    @property
    def rates(self) -> list[float]:
        return [t / s for t, s in zip(self.tokens, self.seconds)]

    @property
    def tokens_per_s(self) -> float:
        return statistics.median(self.rates)


def prompts(workload: str, batch_size: int) -> list[list[dict[str, str]]]:
    family = "arithmetic" if workload == "repetitive" else "word_problems"
    items = task_items(family, "hard", batch_size, seed=3)
    return [[{"role": "user", "content": item.question}] for item in items]


def params(workload: str, max_tokens: int) -> SamplingParams:
    if workload == "repetitive":
        return SamplingParams(temperature=0.0, max_tokens=max_tokens)
    # ignore_eos: every configuration generates the same number of tokens (sampled text differs)
    return SamplingParams(temperature=1.0, max_tokens=max_tokens, seed=0, ignore_eos=True)


def bootstrap_median(
    values: list[float], samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the median of values (resampled with replacement)."""
    if len(values) < 2:
        return (values[0], values[0]) if values else (float("nan"), float("nan"))
    rng = random.Random(seed)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(samples))
    return medians[int(0.025 * samples)], medians[int(0.975 * samples) - 1]


def build_engine(name: str, settings: dict) -> LLM:
    knobs: dict = dict(POOL)
    knobs["device"] = settings["device"]
    if settings["dtype"]:
        knobs["dtype"] = settings["dtype"]
    if name == "baseline-sync":
        knobs["async_scheduling"] = False
    elif not name.startswith("baseline"):
        knobs |= {"speculative_method": name, "num_speculative_tokens": settings["num_speculative_tokens"]}
        knobs |= {"speculative_draft_layers": settings["draft_layers"]} if name == "draft" else {}
    llm = LLM(**knobs)
    for batch_size in settings["batch_sizes"]:  # warm-up: kernels, graphs, the cost model's first samples
        llm.chat(prompts("repetitive", batch_size), params("repetitive", 16))
    return llm


def run_cell(llm: LLM, cell: Cell, batch: list, sampling: SamplingParams, clock) -> list[list[int]]:
    before = llm.engine.stats()
    start = clock()
    results = llm.chat(batch, sampling)
    if llm.engine.device.type == "cuda":
        torch.cuda.synchronize()
    cell.seconds.append(clock() - start)
    after = llm.engine.stats()
    cell.tokens.append(sum(len(r.outputs[0].token_ids) for r in results))
    cell.drafts += after.spec_draft_tokens - before.spec_draft_tokens
    cell.accepted += after.spec_accepted_tokens - before.spec_accepted_tokens
    cell.verifications += after.spec_verifications - before.spec_verifications
    cell.emitted += after.spec_emitted_tokens - before.spec_emitted_tokens
    return [list(r.outputs[0].token_ids) for r in results]


def measure(settings: dict, engines: dict[str, LLM], started: float) -> tuple[dict, int, dict]:
    clock = time.perf_counter if settings["clock"] == "wall" else time.process_time
    cells: dict[tuple[str, int, str], Cell] = {}
    names = list(engines)
    budget = settings["budget_s"]
    rounds = 0
    mismatches: dict[tuple[str, int], int] = {}
    for repeat in range(settings["repeats"]):
        round_start = time.perf_counter()
        for workload in settings["workloads"]:
            for batch_size in settings["batch_sizes"]:
                batch, sampling = prompts(workload, batch_size), params(workload, settings["max_tokens"])
                outputs = {}
                shift = repeat % len(names)
                for name in names[shift:] + names[:shift]:
                    cell = cells.setdefault((workload, batch_size, name), Cell())
                    outputs[name] = run_cell(engines[name], cell, batch, sampling, clock)
                if workload == "repetitive":
                    reference = outputs[names[0]]
                    differing = sum(out != reference for out in outputs.values())
                    mismatches[(workload, batch_size)] = mismatches.get((workload, batch_size), 0) + differing
                    # bf16: a verify step rounds differently from a graph decode step, so a near-tie
                    # may flip; exact identity is asserted for float32 (tests/gpu checks it too)
                    assert settings["dtype"] == "bfloat16" or not differing, "greedy outputs differ"
        rounds += 1
        took = time.perf_counter() - round_start
        elapsed = time.perf_counter() - started
        print(f"round {rounds}: {took:.1f} s (elapsed {elapsed:.0f} s)", flush=True)
        if budget and rounds >= settings["min_rounds"] and elapsed + 1.15 * took > budget:
            break
    return cells, rounds, mismatches


def summarize(cells: dict, settings: dict) -> list[dict]:
    rows = []
    for (workload, batch_size, name), cell in cells.items():
        row: dict = {
            "workload": workload,
            "batch_size": batch_size,
            "config": name,
            "tokens_per_s": round(cell.tokens_per_s, 2),
            "tokens_per_s_rounds": [round(r, 2) for r in cell.rates],
            "tokens": cell.tokens,
            "drafts": cell.drafts,
            "acceptance": round(cell.accepted / cell.drafts, 3) if cell.drafts else None,
            "tokens_per_verify": round(cell.emitted / cell.verifications, 3) if cell.verifications else None,
        }
        base = cells.get((workload, batch_size, "baseline"))
        if base is not None:
            ratios = [r / b for r, b in zip(cell.rates, base.rates, strict=True)]
            low, high = bootstrap_median(ratios)
            row |= {
                "ratio_median": round(statistics.median(ratios), 4),
                "ratio_ci95": [round(low, 4), round(high, 4)],
                "ratio_rounds": [round(r, 4) for r in ratios],
            }
        rows.append(row)
    return rows


def cost_estimates(engines: dict[str, LLM], batch_sizes: list[int]) -> dict:
    """Each speculating engine's measured cost per draft token, per batch size (the switch's c)."""
    out = {}
    for name, llm in engines.items():
        speculator = llm.engine.speculator
        if speculator is not None:
            out[name] = {str(b): round(speculator.cost.cost_per_token(b), 3) for b in batch_sizes}
    return out


def markdown(result: dict) -> str:
    settings = result["settings"]
    lines = [
        f"{result['device']}, torch {result['torch']}, {result['threads']} threads, CPUs {result['cpus']}, "
        f"load average {result['load_before']} -> {result['load_after']}; "
        f"K={settings['num_speculative_tokens']}, "
        f"max_tokens={settings['max_tokens']}, {result['rounds']} rounds, {settings['clock']} clock, "
        f"{result['wall_s']:.0f} s wall",
        "",
        "| workload | batch | config | tokens/s (median) | vs baseline: median of paired ratios | 95% CI "
        "| acceptance | tokens/verify | drafts |",
        "|---|---|---|---:|---:|---|---:|---:|---:|",
    ]
    for row in result["rows"]:
        ratio = f"{row['ratio_median']:.3f}x" if "ratio_median" in row else "-"
        ci = "[{:.3f}, {:.3f}]".format(*row["ratio_ci95"]) if "ratio_ci95" in row else "-"
        acceptance = f"{row['acceptance']:.2f}" if row["acceptance"] is not None else "-"
        per_verify = f"{row['tokens_per_verify']:.2f}" if row["tokens_per_verify"] is not None else "-"
        lines.append(
            f"| {row['workload']} | {row['batch_size']} | {row['config']} | {row['tokens_per_s']:.1f} "
            f"| {ratio} "
            f"| {ci} | {acceptance} | {per_verify} | {row['drafts']} |"
        )
    lines += [
        "",
        "Greedy (repetitive) runs whose outputs differed from the first config's: "
        f"{result['greedy_mismatches']}",
    ]
    if result["cost_per_draft_token"]:
        lines += [
            "",
            f"Measured cost per draft token at the end (decode steps): {result['cost_per_draft_token']}",
        ]
    return "\n".join(lines) + "\n"


def settings_from(args: argparse.Namespace) -> dict:
    settings = DEFAULTS | PRESETS.get(args.preset or "", {})
    for key in DEFAULTS:
        value = getattr(args, key)
        if value is not None:
            settings[key] = value
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--preset", choices=sorted(PRESETS), default=None, help="a named set of the options below"
    )
    parser.add_argument("--batch-sizes", type=int, nargs="+")
    parser.add_argument("--max-tokens", type=int)
    parser.add_argument("--repeats", type=int, help="rounds (at most, with --budget-s)")
    parser.add_argument("--num-speculative-tokens", type=int)
    parser.add_argument("--draft-layers", type=int)
    parser.add_argument("--workloads", nargs="+")
    parser.add_argument("--configs", nargs="+")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--device", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--budget-s", type=float, help="stop adding rounds once the next would end past this")
    parser.add_argument("--min-rounds", type=int)
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        help="cpu: tokens per CPU-second of this process (with --threads 1 that is wall time on a "
        "quiet machine, and far steadier on a shared one)",
    )
    parser.add_argument("--out", default=None, help="write speculative.json and speculative.md here")
    parser.add_argument("--json", default=None, help="also write the raw figures to this file")
    args = parser.parse_args()
    settings = settings_from(args)
    if settings["threads"]:
        torch.set_num_threads(settings["threads"])
    if settings["device"] == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")

    started = time.perf_counter()
    load_before = [round(x, 2) for x in os.getloadavg()]
    engines = {name: build_engine(name, settings) for name in settings["configs"]}
    print(f"engines ready in {time.perf_counter() - started:.1f} s", flush=True)
    cells, rounds, mismatches = measure(settings, engines, started)
    device = (
        f"CUDA ({torch.cuda.get_device_name()})"
        if settings["device"] == "cuda"
        else f"CPU ({platform.processor() or platform.machine()})"
    )
    result = {
        "settings": settings,
        "device": device,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpus": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_before": load_before,
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "rounds": rounds,
        "wall_s": round(time.perf_counter() - started, 1),
        # configurations whose greedy outputs differed from the first one's, summed over rounds
        "greedy_mismatches": {f"{w} batch {b}": n for (w, b), n in mismatches.items()},
        "cost_per_draft_token": cost_estimates(engines, settings["batch_sizes"]),
        "rows": summarize(cells, settings),
    }
    table = markdown(result)
    print()
    print(table)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "speculative.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
        (out / "speculative.md").write_text(table, encoding="utf-8")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
