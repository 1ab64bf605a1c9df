"""Checking the simulator against real runs: calibrate it from the server's own step log and the
requests of other runs, predict a held-out run, and compare latency percentiles.

A run is a replayed trace: every request's arrival (s from the run's start), lengths and the
TTFT/TPOT the client measured. The step model is fitted on the steps the server logged outside
the held-out run's time window, and the fixed per-request latency (HTTP, validation, delivery)
is the mean gap between measured and simulated TTFT on the other runs: a constant shift of
every arrival shifts a single worker's whole schedule, so that gap is exactly what it adds."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ponder.errors import InvalidRequestError
from ponder.profiling.step_log import StepRecord
from ponder.profiling.step_model import StepModel, fit
from ponder.sim.cluster import ClusterSpec, simulate
from ponder.sim.report import tpot_of
from ponder.sim.worker import SimRequest


@dataclass(frozen=True)
class RealRequest:
    arrival: float  # s after the run's start, when the client sent it
    input_len: int
    output_len: int
    ttft: float
    tpot: float


@dataclass
class Run:
    label: str  # e.g. the load level; repeats of one trace share it
    start: float  # wall clock of the run's window (to pick its steps out of the log)
    end: float
    requests: list[RealRequest] = field(default_factory=list)


def steps_in(records: list[StepRecord], run: Run) -> list[StepRecord]:
    return [r for r in records if run.start <= r.start <= run.end]


def steps_outside(records: list[StepRecord], runs: list[Run]) -> list[StepRecord]:
    return [r for r in records if not any(run.start <= r.start <= run.end for run in runs)]


def simulate_run(
    run: Run, spec: ClusterSpec, model: StepModel, decode_model: StepModel | None = None
) -> list[SimRequest]:
    reqs = [SimRequest(i, r.arrival, r.input_len, r.output_len) for i, r in enumerate(run.requests)]
    return simulate(reqs, spec, model, decode_model)


def request_overhead(
    runs: list[Run], spec: ClusterSpec, model: StepModel, decode_model: StepModel | None = None
) -> float:
    """Median (measured - simulated) TTFT over these runs' requests, simulated without overhead
    (the median: a stalled run's huge gaps say nothing about the HTTP path)."""
    base = replace(model, request_overhead_s=0.0)
    gaps = [
        real.ttft - (sim.first_token - sim.arrival)  # type: ignore[operator]
        for run in runs
        for real, sim in zip(run.requests, simulate_run(run, spec, base, decode_model))
    ]
    if not gaps:
        raise InvalidRequestError("no requests to calibrate the per-request overhead", param="runs")
    return max(0.0, float(np.median(gaps)))


def calibrate(
    records: list[StepRecord], runs: list[Run], spec: ClusterSpec, exponents: tuple[float, ...] | None = None
) -> StepModel:
    """Step model from these step records, request overhead from these runs. exponents: the
    token exponents `fit` may choose from (None: its default; (1.0,): the linear model)."""
    model = fit([(r.tokens, r.seqs, r.attn, r.sampled, r.seconds) for r in records], exponents=exponents)
    return replace(model, request_overhead_s=request_overhead(runs, spec, model))


def calibrate_pd(
    prefill: list[StepRecord],
    decode: list[StepRecord],
    runs: list[Run],
    spec: ClusterSpec,
    prior: StepModel | None = None,
) -> tuple[StepModel, StepModel]:
    """A model per role (prefill workers' steps, decode workers' steps); the request overhead,
    calibrated with both, rides on the prefill model (arrivals go there first). Each role's steps
    alone leave terms apart that they cannot tell (a decode step's tokens = its sequences = its
    samples; every prefill one prompt length): those follow `prior`, by default the fit of both
    roles' steps pooled, in which prompt chunks and decodes tell tokens from sequences."""
    rows = lambda records: [(r.tokens, r.seqs, r.attn, r.sampled, r.seconds) for r in records]  # noqa: E731
    # Linear: the pooled steps mix two batch shapes, and each role keeps the prior's exponent.
    pooled = prior or fit(rows(prefill) + rows(decode), exponents=(1.0,))
    front, back = fit(rows(prefill), prior=pooled), fit(rows(decode), prior=pooled)
    return replace(front, request_overhead_s=request_overhead(runs, spec, front, back)), back


def hold_out(
    records: list[StepRecord],
    runs: list[Run],
    index: int,
    spec: ClusterSpec,
    neighbours: int = 0,
    exponents: tuple[float, ...] | None = None,
) -> StepModel:
    """Calibrated on everything but runs[index]: its steps and its requests stay unseen. With
    neighbours=k, only on the k runs before and the k after it in time (the same conditions, as
    far as a shared machine has any), their steps and requests."""
    held = runs[index]
    if neighbours:
        order = sorted(range(len(runs)), key=lambda k: runs[k].start)
        at = order.index(index)
        near = [runs[k] for k in order[max(0, at - neighbours) : at + neighbours + 1] if k != index]
        steps = [r for r in records if any(run.start <= r.start <= run.end for run in near)]
        return calibrate(steps, near, spec, exponents)
    others = [run for k, run in enumerate(runs) if k != index]
    return calibrate(steps_outside(records, [held]), others, spec, exponents)


def save_runs(path: str | Path, runs: list[Run], **extra: object) -> None:
    Path(path).write_text(json.dumps({"runs": [asdict(run) for run in runs], **extra}))


def load_runs(path: str | Path) -> tuple[list[Run], dict]:
    """A save_runs file, plain or gzipped (.json.gz)."""
    import gzip

    raw = Path(path).read_bytes()
    data = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    runs = [
        Run(r["label"], r["start"], r["end"], [RealRequest(**q) for q in r["requests"]])
        for r in data.pop("runs")
    ]
    return runs, data


def latency(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def metrics_real(run: Run) -> dict[str, float]:
    ttft, tpot = [r.ttft for r in run.requests], [r.tpot for r in run.requests if r.output_len > 1]
    return _metrics(ttft, tpot)


def metrics_sim(sims: list[SimRequest]) -> dict[str, float]:
    ttft = [s.first_token - s.arrival for s in sims]  # type: ignore[operator]
    return _metrics(ttft, [tpot_of(s) for s in sims if s.output_len > 1])


def _metrics(ttft: list[float], tpot: list[float]) -> dict[str, float]:
    return {
        "TTFT p50": latency(ttft, 50),
        "TTFT p95": latency(ttft, 95),
        "TPOT p50": latency(tpot, 50),
        "TPOT p95": latency(tpot, 95),
    }


def leave_one_out_real(runs: list[Run], index: int) -> dict[str, float] | None:
    """The best a noise-free predictor could do from the other repeats of the same trace: their
    mean metric. None when the trace has no other repeat."""
    label = runs[index].label
    others = [metrics_real(r) for k, r in enumerate(runs) if k != index and r.label == label]
    if not others:
        return None
    return {key: float(np.mean([m[key] for m in others])) for key in others[0]}
