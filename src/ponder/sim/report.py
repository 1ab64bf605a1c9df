"""Latency percentiles, goodput at an SLO, and the P:D sweep."""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import numpy as np

from ponder.profiling.step_model import StepModel
from ponder.sim.cluster import ClusterSpec, simulate
from ponder.sim.worker import SimRequest


@dataclass
class SimReport:
    ttft: dict[str, float]
    tpot: dict[str, float]
    e2e: dict[str, float]
    attainment: float
    goodput: float  # requests/s meeting both SLOs
    num_requests: int


def _pct(values: list[float]) -> dict[str, float]:
    arr = np.array(values) if values else np.zeros(1)
    return {
        "mean": float(arr.mean()),
        "p50": float(np.percentile(arr, 50)),
        "p95": float(np.percentile(arr, 95)),
        "p99": float(np.percentile(arr, 99)),
    }


def tpot_of(req: SimRequest) -> float:
    assert req.finished is not None and req.first_token is not None
    return (req.finished - req.first_token) / (req.output_len - 1) if req.output_len > 1 else 0.0


def summarize(reqs: list[SimRequest], ttft_slo: float, tpot_slo: float) -> SimReport:
    ttft = [r.first_token - r.arrival for r in reqs if r.first_token is not None]
    tpot = [tpot_of(r) for r in reqs if r.output_len > 1]
    e2e = [r.finished - r.arrival for r in reqs if r.finished is not None]
    good = [r for r in reqs if r.first_token - r.arrival <= ttft_slo and tpot_of(r) <= tpot_slo]  # type: ignore[operator]
    span = max(r.finished for r in reqs) - min(r.arrival for r in reqs)  # type: ignore[type-var]
    return SimReport(
        _pct(ttft), _pct(tpot), _pct(e2e), len(good) / len(reqs), len(good) / max(span, 1e-9), len(reqs)
    )


def run(
    reqs: list[SimRequest],
    spec: ClusterSpec,
    model: StepModel,
    ttft_slo: float,
    tpot_slo: float,
    decode_model: StepModel | None = None,
) -> SimReport:
    return summarize(simulate(copy.deepcopy(reqs), spec, model, decode_model), ttft_slo, tpot_slo)


def sweep_pd(
    reqs: list[SimRequest],
    total: int,
    base: ClusterSpec,
    model: StepModel,
    ttft_slo: float,
    tpot_slo: float,
    prefill_model: StepModel | None = None,
    decode_model: StepModel | None = None,
) -> list[tuple[str, SimReport]]:
    """Every P:D split of `total` workers plus colocated; best attainment (then goodput) first.
    `model` runs the colocated workers; prefill_model/decode_model (default: `model`) the P/D ones."""
    results = [
        (
            f"colocated x{total}",
            run(reqs, replace(base, colocated=total, prefill=0, decode=0), model, ttft_slo, tpot_slo),
        )
    ]
    for p in range(1, total):
        spec = replace(base, prefill=p, decode=total - p)
        front = prefill_model or model
        results.append(
            (f"{p}P{total - p}D", run(reqs, spec, front, ttft_slo, tpot_slo, decode_model or front))
        )
    return sorted(results, key=lambda r: (-r[1].attainment, -r[1].goodput))
