"""Train several candidate built-in models side by side on one GPU and pick one by task accuracy.

The built-in model must be good on easy items and middling (30-70%) on hard ones, so that
test-time scaling has room to help. Loss does not say where a model lands on that scale, so
this script trains candidates (different data mixes and lengths) in parallel, exports snapshots
along the way (`--snapshot-every`), evaluates each snapshot greedily with `ponder eval` while
training goes on, and ranks them. Run on the device machine from the repo root:

    PYTHONPATH=src python3 benchmarks/builtin_sweep.py --out /tmp/sweep \\
        --run nohard:4:easy=0.4,medium=0.6,hard=0 --run short:1.5:easy=0.25,medium=0.35,hard=0.4

A run is NAME:MINUTES:DIFFICULTY_WEIGHTS[:CELL_WEIGHTS[:PROBE_FRACTION]] (cells as in
`ponder train --cell-weights`, probes as `--probe-fraction`; an empty field keeps the preset's);
a run ends at MINUTES or at the preset's step count (`--steps` overrides it), whichever comes first.
Results: OUT/ranking.json (every snapshot's accuracy per family and difficulty) and OUT/best (a
copy of the chosen model). With `--vote-samples 16`, each run's final model is also scored by
what voting gains: greedy and 16-sample self-consistency (`--vote-temperature` 0.8,
`--vote-top-p` 1.0) on one set of hard items per `--vote-item-seeds` (several sets, because one
set of 192 problems moves the gain by about 3 points).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

TOKENIZER = "src/ponder/assets/ponder-reasoner"  # keep the shipped tokenizer: docs and tests stay true


@dataclass
class Run:
    name: str
    minutes: float
    weights: str
    cells: str = ""
    probe_fraction: str = ""
    process: subprocess.Popen | None = None


def parse_run(text: str) -> Run:
    name, minutes, weights, *rest = text.split(":", 4)
    return Run(name, float(minutes), weights, *rest)


def start_training(run: Run, args: argparse.Namespace) -> None:
    out_dir = Path(args.out) / run.name
    command = [
        sys.executable,
        "-m",
        "ponder.train",
        "--preset",
        args.preset,
        "--out-dir",
        str(out_dir),
        "--time-budget-minutes",
        str(run.minutes),
        "--difficulty-weights",
        run.weights,
        "--snapshot-every",
        str(args.snapshot_every),
        "--tokenizer-dir",
        TOKENIZER,
        "--num-workers",
        str(args.workers_per_run),
        "--seed",
        str(args.seed),
        "--no-progress",
        *(["--cell-weights", run.cells] if run.cells else []),
        *(["--probe-fraction", run.probe_fraction] if run.probe_fraction else []),
        *(["--steps", str(args.steps)] if args.steps else []),
    ]
    log = open(Path(args.out) / f"{run.name}.train.log", "w")
    run.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def eval_command(model_dir: Path, json_path: Path, args: argparse.Namespace, *options: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "ponder",
        "eval",
        "--model",
        str(model_dir),
        "--tasks",
        "all",
        "--concurrency",
        "512",
        "--max-tokens",
        str(args.max_tokens),
        "--dtype",
        "float32",
        "--kv-cache-memory",
        "4GiB",
        "--json",
        str(json_path),
        "--no-progress",
        *options,
    ]


def overall_accuracy(json_path: Path) -> dict[str, float]:
    """Accuracy over all items, per strategy label."""
    strategies = json.loads(json_path.read_text())["strategies"]
    return {s["label"]: next(r["accuracy"] for r in s["summary"] if r["family"] == "all") for s in strategies}


def evaluate(model_dir: Path, args: argparse.Namespace) -> dict:
    """Greedy accuracy per family x difficulty: {"hard": {"arithmetic": 0.5, ...}, ...}; for a
    final model with --vote-samples, also greedy and self-consistency on each --vote-item-seeds set
    of hard items: {"vote": {"0": {"greedy": 0.42, "vote": 0.52}, ...}}."""
    result_path = model_dir / "eval.json"
    command = eval_command(
        model_dir,
        result_path,
        args,
        "--difficulty",
        args.difficulty,
        "--limit",
        str(args.limit),
        "--strategy",
        "greedy",
    )
    votes = {}
    vote_strategy = f"self_consistency:n={args.vote_samples}"  # also its label in the results
    if args.vote_samples and model_dir.name == "model":  # the seed sets run beside the greedy eval
        votes = {
            seed: subprocess.Popen(
                eval_command(
                    model_dir,
                    model_dir / f"vote-{seed}.json",
                    args,
                    "--difficulty",
                    "hard",
                    "--limit",
                    str(args.vote_limit),
                    "--item-seed",
                    seed,
                    "--temperature",
                    str(args.vote_temperature),
                    "--top-p",
                    str(args.vote_top_p),
                    "--strategy",
                    "greedy",
                    "--strategy",
                    vote_strategy,
                ),
                stdout=subprocess.DEVNULL,
            )
            for seed in args.vote_item_seeds.split(",")
        }
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    summary = json.loads(result_path.read_text())["strategies"][0]["summary"]
    accuracy: dict[str, dict[str, float]] = {}
    reasoning: dict[str, dict[str, float]] = {}
    for row in summary:
        if row["family"] != "all":
            accuracy.setdefault(row["difficulty"], {})[row["family"]] = row["accuracy"]
            reasoning.setdefault(row["difficulty"], {})[row["family"]] = row["mean_reasoning_tokens"]
    result: dict = {"accuracy": accuracy, "reasoning_tokens": reasoning}
    for seed, process in votes.items():
        if process.wait() != 0:
            raise subprocess.CalledProcessError(process.returncode, process.args)
        accuracy_of = overall_accuracy(model_dir / f"vote-{seed}.json")
        result.setdefault("vote", {})[seed] = {
            "greedy": accuracy_of["greedy"],
            "vote": accuracy_of[vote_strategy],
        }
    return result


def score(result: dict) -> tuple:
    """Every easy family >= 0.9 first; then, where voting was measured, the mean gain of
    self-consistency over greedy (models without it rank below); then families with hard
    accuracy in [0.3, 0.7]; then closeness of hard accuracies to 0.5."""
    accuracy = result["accuracy"]
    easy_ok = all(value >= 0.9 for value in accuracy.get("easy", {}).values())
    hard = accuracy.get("hard", {})
    in_band = sum(0.3 <= value <= 0.7 for value in hard.values())
    gains = [sets["vote"] - sets["greedy"] for sets in result.get("vote", {}).values()]
    vote_gain = sum(gains) / len(gains) if gains else float("-inf")
    return (easy_ok, vote_gain, in_band, -sum(abs(value - 0.5) for value in hard.values()))


def ready_snapshots(run: Run, args: argparse.Namespace, seen: set[Path]) -> list[Path]:
    """Snapshots whose export is complete: a later one exists, or the run has ended."""
    snapshots = sorted((Path(args.out) / run.name / "snapshots").glob("step-*"))
    finished = run.process is not None and run.process.poll() is not None
    complete = snapshots if finished else snapshots[:-1]
    if finished and (Path(args.out) / run.name / "model").exists():
        complete = [*complete, Path(args.out) / run.name / "model"]
    return [path for path in complete if path not in seen]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", required=True)
    parser.add_argument("--run", action="append", required=True, type=parse_run)
    parser.add_argument("--preset", default="builtin", help="tiny: a CPU smoke run of this script")
    parser.add_argument("--max-tokens", type=int, default=1536)
    parser.add_argument("--snapshot-every", type=int, default=500)
    parser.add_argument("--steps", type=int, help="optimiser steps per run (default: the preset's)")
    parser.add_argument("--workers-per-run", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--difficulty", default="easy,hard")
    parser.add_argument("--limit", type=int, default=16)
    parser.add_argument("--parallel-evals", type=int, default=2)
    parser.add_argument(
        "--vote-samples",
        type=int,
        default=0,
        help="also measure self-consistency with this many samples on final models",
    )
    parser.add_argument("--vote-item-seeds", default="0,1", help="one hard item set per seed")
    parser.add_argument("--vote-limit", type=int, default=32, help="hard items per family and set")
    parser.add_argument("--vote-temperature", type=float, default=0.8)
    parser.add_argument("--vote-top-p", type=float, default=1.0, help="1.2 / 0.9 voted best on P2")
    parser.add_argument("--deadline-s", type=float, default=540, help="stop evaluating after this")
    args = parser.parse_args()
    started = time.monotonic()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    for run in args.run:
        start_training(run, args)
    results: dict[str, dict] = {}
    seen: set[Path] = set()
    running: dict[Future, Path] = {}
    with ThreadPoolExecutor(args.parallel_evals) as pool:  # evaluations share the GPU with training
        while time.monotonic() - started < args.deadline_s:
            for future in [f for f in running if f.done()]:
                path = running.pop(future)
                try:
                    result = future.result()
                except subprocess.CalledProcessError as error:
                    print(f"eval failed for {path}: {error}", flush=True)
                    continue
                key = str(path.relative_to(args.out))
                results[key] = {
                    **result,
                    "score": score(result),
                    "elapsed_s": round(time.monotonic() - started),
                }
                print(json.dumps({key: results[key]}), flush=True)
                Path(args.out, "ranking.json").write_text(json.dumps(results, indent=1))
            pending = [path for run in args.run for path in ready_snapshots(run, args, seen)]
            trained = all(run.process.poll() is not None for run in args.run)
            if not pending and not running and trained:
                break
            if pending and len(running) < args.parallel_evals:
                path = pending[-1] if len(pending) > 2 else pending[0]  # behind: newest first
                seen.add(path)
                running[pool.submit(evaluate, path, args)] = path
                continue
            time.sleep(2)
    ranked = sorted(results, key=lambda key: results[key]["score"], reverse=True)
    if ranked:
        best = Path(args.out) / ranked[0]
        shutil.copytree(best, Path(args.out) / "best", dirs_exist_ok=True)
        print(f"best: {ranked[0]} {results[ranked[0]]['score']}", flush=True)
    for run in args.run:
        if run.process.poll() is None:
            run.process.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
