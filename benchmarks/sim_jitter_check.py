"""Does step-time jitter in the simulator help its p95s? An experiment on saved validation runs
(benchmarks/sim_validation.py's --out): each run simulated with its step times multiplied by
residuals (logged time / fitted time) drawn from the calibration steps, in blocks of --block
consecutive steps, averaged over 5 seeds, against the deterministic simulator. The request term
is recalibrated under the jitter. Not part of the simulator: on the 2026-12-07 runs it did not
help (docs/results/sim.md).

    python benchmarks/sim_jitter_check.py docs/results/sim_raw --block 1 --residuals no-stalls
    python benchmarks/sim_jitter_check.py docs/results/sim_raw --block 1 --own   # in-sample steps"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from ponder.profiling.step_log import read_logs
from ponder.sim import worker as sim_worker
from ponder.sim.cluster import ClusterSpec
from ponder.sim.validate import (
    calibrate,
    load_runs,
    metrics_real,
    metrics_sim,
    simulate_run,
    steps_in,
    steps_outside,
)

SEEDS = 5
_start_step = sim_worker.SimWorker.start_step


def jittered(residuals: np.ndarray, block: int, seed: int):
    """A SimWorker.start_step whose step lasts the model's time x the next residual."""
    rng = np.random.default_rng(seed)
    state = {"at": 0, "left": 0}

    def start_step(self, now):
        end = _start_step(self, now)
        if end is None:
            return None
        if state["left"] == 0:
            state["at"], state["left"] = int(rng.integers(len(residuals))), block
        ratio = residuals[state["at"] % len(residuals)]
        state["at"] += 1
        state["left"] -= 1
        self.busy_until = now + (end - now) * ratio
        return self.busy_until

    return start_step


def simulated(run, spec, model, residuals, block, seed0=0):
    if residuals is None:
        return [simulate_run(run, spec, model)]
    out = []
    for seed in range(SEEDS):
        sim_worker.SimWorker.start_step = jittered(residuals, block, seed0 + seed)
        try:
            out.append(simulate_run(run, spec, model))
        finally:
            sim_worker.SimWorker.start_step = _start_step
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("raw", type=Path)
    ap.add_argument("--block", type=int, default=1)
    ap.add_argument("--residuals", choices=("all", "no-stalls"), default="no-stalls")
    ap.add_argument("--own", action="store_true", help="calibrate on the run's own steps")
    args = ap.parse_args()
    runs, saved = load_runs(next(args.raw.glob("steps-*-runs.json")))
    records = read_logs(sorted(args.raw.glob(saved["steps"] + ".*.jsonl*")))
    spec = ClusterSpec(colocated=1, budget=saved.get("args", {}).get("budget", 256))
    errors: dict[str, list[dict[str, float]]] = {"deterministic": [], "jitter": []}
    for index, run in enumerate(runs):
        others = [r for k, r in enumerate(runs) if k != index]
        steps = steps_outside(records, [run])
        if args.own:
            others, steps = [run], steps_in(records, run)
        model = calibrate(steps, others, spec)
        ratios = np.array([r.seconds / model.step_time(r.tokens, r.seqs, r.attn, r.sampled) for r in steps])
        if args.residuals == "no-stalls":
            ratios = ratios[ratios <= 3.0]
        base = replace(model, request_overhead_s=0.0)
        gaps = [
            real.ttft - (sim.first_token - sim.arrival)
            for other in others
            for sims in simulated(other, spec, base, ratios, args.block, 100)
            for real, sim in zip(other.requests, sims)
        ]
        noisy = replace(model, request_overhead_s=max(0.0, float(np.median(gaps))))
        real = metrics_real(run)
        for name, m, res in (("deterministic", model, None), ("jitter", noisy, ratios)):
            found = [metrics_sim(s) for s in simulated(run, spec, m, res, args.block)]
            errors[name].append({k: float(np.mean([f[k] for f in found])) / real[k] - 1 for k in real})
    for name, rows in errors.items():
        print(f"{name}: mean |error| {np.mean([abs(v) for r in rows for v in r.values()]):.1%}")
        for key in rows[0]:
            each = " ".join(f"{r[key]:+.0%}" for r in rows)
            print(f"  {key}: {each} (mean abs {np.mean([abs(r[key]) for r in rows]):.0%})")


if __name__ == "__main__":
    main()
