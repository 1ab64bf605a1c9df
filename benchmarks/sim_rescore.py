"""Re-score recorded sim-validation runs offline (no server, no step log needed): each run
predicted by the simulator calibrated on the OTHER runs only, three ways, next to the real
repeat-vs-repeat spread, per (load, metric) cell:

- before: the held-out linear step model the run itself stored (fitted on the other runs'
  logged steps, sim_validation.json's rows[i].model);
- linear, refit on requests: that model's form refitted to the other runs' per-request TTFT and
  TPOT (sim/refit.py), token exponent 1;
- sublinear, refit on requests: the same with the token exponent chosen by leave-one-load-out
  over the other runs (sim/refit.py's refit).

    python benchmarks/sim_rescore.py docs/results/sim_quiet --out /tmp/rescore

Used because the quiet-machine runs' step log did not come back from the device; a run that has
its step log is better re-reported with `sim_validation.py --reanalyze` (steps, not requests).

The request-level refit: on one worker the steps are back to back while a request runs, so its
measured TPOT is the mean time of the simulated steps between its first and last token, and its
TTFT the per-request term plus the steps from its arrival at the engine to its first token (the
step in progress then by its remaining share). Each is linear in the step model's coefficients
once the schedule is fixed: simulate with the current model, read each request's steps off the
trace, solve one least squares (relative errors, coefficients >= 0) for the coefficients and the
per-request term, and simulate again with the result; a few rounds settle the schedule.
An experiment, not part of the simulator: on synthetic runs the rounds do not settle well (the
schedule moves with the model), and on the quiet-machine runs it did not beat the step fit
(docs/results/sim.md)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ponder.errors import InvalidRequestError
from ponder.profiling.step_model import EXPONENTS, StepModel, nonnegative_lstsq
from ponder.sim.cluster import ClusterSpec, simulate
from ponder.sim.validate import Run, leave_one_out_real, load_runs, metrics_real, metrics_sim, simulate_run
from ponder.sim.worker import SimRequest

COLUMNS = [
    ("before", "before: stored held-out step fit (linear)"),
    ("linear", "linear, refit on other runs' requests"),
    ("sublinear", "sublinear, refit on other runs' requests"),
]


def _step_features(trace: np.ndarray, exponent: float) -> np.ndarray:
    tokens, seqs, attn, sampled = trace[:, 2], trace[:, 3], trace[:, 4], trace[:, 5]
    return np.column_stack([np.ones(len(trace)), tokens**exponent, seqs, attn, sampled])


def request_equations(
    run: Run, spec: ClusterSpec, model: StepModel, exponent: float
) -> tuple[np.ndarray, np.ndarray]:
    """(x, y): one row per TPOT and per TTFT of the run, x @ (5 step coefficients, per-request
    term) predicting y under the schedule `model` gives."""
    if spec.disaggregated or spec.colocated != 1:
        raise InvalidRequestError("request-level refit needs one colocated worker", param="workers")
    sims = [SimRequest(i, r.arrival, r.input_len, r.output_len) for i, r in enumerate(run.requests)]
    log: list[tuple[float, float, int, int, float, int]] = []
    simulate(sims, spec, model, trace=log)
    trace = np.array(log, dtype=float).reshape(-1, 6)
    features = _step_features(trace, exponent)
    starts, ends = trace[:, 0], trace[:, 1]
    total = np.vstack([np.zeros(5), np.cumsum(features, axis=0)])
    rows, values = [], []
    for real, sim in zip(run.requests, sims):
        assert sim.first_token is not None and sim.finished is not None
        if real.output_len > 1 and sim.output_len > 1:  # steps ending after the first token
            lo, hi = np.searchsorted(ends, [sim.first_token, sim.finished], "right")
            rows.append(np.append((total[hi] - total[lo]) / (sim.output_len - 1), 0.0))
            values.append(real.tpot)
        arrived = sim.arrival + model.request_overhead_s
        lo, hi = np.searchsorted(ends, [arrived, sim.first_token], "right")
        steps = total[hi] - total[lo]
        if lo < len(ends) and starts[lo] < arrived:  # in progress on arrival: what was left of it
            steps = steps - features[lo] * (arrived - starts[lo]) / (ends[lo] - starts[lo])
        rows.append(np.append(steps, 1.0))
        values.append(real.ttft)
    return np.array(rows), np.array(values)


def fit_to_requests(
    runs: Sequence[Run], spec: ClusterSpec, start: StepModel, exponent: float = 1.0, rounds: int = 3
) -> StepModel:
    """The step model (token term ** exponent) and per-request term that best reproduce these
    runs' per-request TTFT and TPOT; `start` gives the first schedule."""
    if not runs or not any(run.requests for run in runs):
        raise InvalidRequestError("no recorded requests to fit", param="runs")
    model = start
    for _ in range(rounds):
        parts = [request_equations(run, spec, model, exponent) for run in runs if run.requests]
        x, y = np.vstack([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        keep = y > 0
        if keep.sum() < 8:
            raise InvalidRequestError("too few requests with a latency to fit", param="runs")
        x, y = x[keep] / y[keep, None], np.ones(int(keep.sum()))  # relative errors
        coef = nonnegative_lstsq(x, y, np.zeros(6))
        model = StepModel(*(float(c) for c in coef[:5]), float(coef[5]), token_exponent=exponent)
    return model


def metric_error(run: Run, spec: ClusterSpec, model: StepModel) -> float:
    """Mean |sim / real - 1| over TTFT and TPOT p50 and p95."""
    real, sim = metrics_real(run), metrics_sim(simulate_run(run, spec, model))
    return float(np.mean([abs(sim[k] / real[k] - 1) for k in real]))


def refit(
    runs: Sequence[Run],
    spec: ClusterSpec,
    start: StepModel,
    exponents: Sequence[float] = EXPONENTS,
    rounds: int = 2,
) -> StepModel:
    """fit_to_requests at the exponent whose fits predict held-out runs best: leave one label
    (load level) out over these runs, so each candidate must extrapolate to a load it was not
    fitted on (mean metric_error; the first of equals, so linear wins ties)."""
    labels = sorted({run.label for run in runs})
    if len(labels) < 2:
        raise InvalidRequestError("choosing the exponent needs runs of at least 2 labels", param="runs")
    errors = []
    for exponent in exponents:
        per_run = []
        for label in labels:
            fitted = fit_to_requests([r for r in runs if r.label != label], spec, start, exponent, rounds)
            per_run += [metric_error(r, spec, fitted) for r in runs if r.label == label]
        errors.append(float(np.mean(per_run)))
    best = next(e for e, err in zip(exponents, errors) if err <= min(errors) + 1e-9)
    return fit_to_requests(runs, spec, start, best, rounds)


def rescore(raw: Path, exponents=EXPONENTS, rounds: int = 2) -> dict:
    runs, saved = load_runs(next(raw.glob("steps-*-runs.json*")))
    stored = json.loads((raw / "sim_validation.json").read_text())["rows"]
    spec = ClusterSpec(colocated=1, budget=saved.get("args", {}).get("budget", 256))
    rows = []
    for index, run in enumerate(runs):
        before = StepModel(**stored[index]["model"])
        others = [r for k, r in enumerate(runs) if k != index]
        models = {
            "before": before,
            "linear": fit_to_requests(others, spec, before, 1.0, rounds),
            "sublinear": refit(others, spec, before, exponents, rounds),
        }
        row = {"label": run.label, "real": metrics_real(run), "real_others": leave_one_out_real(runs, index)}
        for name, model in models.items():
            row[name] = metrics_sim(simulate_run(run, spec, model))
            row[name + "_model"] = model.__dict__
        rows.append(row)
        print(f"run {index} ({run.label}): exponent {models['sublinear'].token_exponent}", flush=True)
    return {"rows": rows, "loads": saved["loads"], "capacity": saved["capacity"]}


def table(result: dict) -> str:
    rows = result["rows"]
    lines = [
        "| load | metric | real (mean) | real spread | " + " | ".join(t for _, t in COLUMNS) + " |",
        "|---|---|---|---|" + "---|" * len(COLUMNS),
    ]
    cells: dict[str, list[float]] = {c: [] for c, _ in COLUMNS + [("spread", "")]}
    within = {c: 0 for c in cells}
    for load in result["loads"]:
        label = f"{load:.0%}"
        mine = [r for r in rows if r["label"] == label]
        for key in mine[0]["real"]:
            spread = [r["real_others"][key] / r["real"][key] - 1 for r in mine if r["real_others"]]
            parts = [_errors(spread, cells["spread"], within, "spread")]
            for column, _ in COLUMNS:
                errors = [r[column][key] / r["real"][key] - 1 for r in mine]
                parts.append(_errors(errors, cells[column], within, column))
            real = 1e3 * np.mean([r["real"][key] for r in mine])
            lines.append(f"| {label} | {key} (ms) | {real:.1f} | " + " | ".join(parts) + " |")
    n = len(lines) - 2
    lines.append("")
    lines.append(
        "Mean |error| over every run and metric (cells <= 10 % of "
        + str(n)
        + "): "
        + "; ".join(f"{c} {np.mean(v):.1%} ({within[c]})" for c, v in cells.items())
    )
    exps = [r["sublinear_model"]["token_exponent"] for r in rows]
    lines.append(f"token exponent chosen per held-out run: {exps}")
    return "\n".join(lines)


def _errors(values: list[float], flat: list[float], within: dict, column: str) -> str:
    if not values:
        return "-"
    flat.extend(abs(v) for v in values)
    mean = float(np.mean(np.abs(values)))
    within[column] += mean <= 0.10
    return " ".join(f"{v:+.0%}" for v in values) + f" (mean abs {mean:.0%})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("raw", type=Path, help="a sim_validation.py --out directory")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    began = time.monotonic()
    result = rescore(args.raw, rounds=args.rounds)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rescore.json").write_text(json.dumps(result, indent=2))
    text = table(result)
    print("\n" + text)
    (args.out / "rescore.md").write_text(
        f"# sim re-score ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{time.monotonic() - began:.0f} s)\n\n    python3 {' '.join(sys.argv)}\n\n{text}\n"
    )


if __name__ == "__main__":
    main()
