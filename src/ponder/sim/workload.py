"""Workloads: Poisson arrivals with length distributions, or a JSONL trace."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ponder.errors import InvalidRequestError
from ponder.sim.worker import SimRequest


def _lengths(rng: np.random.Generator, mean: int, spread: float, n: int) -> np.ndarray:
    if mean < 1:
        raise InvalidRequestError("lengths must be >= 1", param="length")
    if spread <= 0:
        return np.full(n, mean)
    low, high = max(1, int(mean * (1 - spread))), max(1, int(mean * (1 + spread)))
    return rng.integers(low, high + 1, n)


def poisson(
    rate: float, num: int, input_len: int, output_len: int, spread: float = 0.0, seed: int = 0
) -> list[SimRequest]:
    if rate <= 0 or num < 1:
        raise InvalidRequestError("rate must be > 0 and num-requests >= 1", param="rate")
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / rate, num))
    ins, outs = _lengths(rng, input_len, spread, num), _lengths(rng, output_len, spread, num)
    return [SimRequest(i, float(a), int(x), int(y)) for i, (a, x, y) in enumerate(zip(arrivals, ins, outs))]


def from_jsonl(path: str | Path, rate: float | None = None, seed: int = 0) -> list[SimRequest]:
    """Lines of {"input_len", "output_len"} and optionally "arrival" (s); a rate re-times them."""
    try:
        rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
        reqs = [
            SimRequest(i, float(r.get("arrival", 0.0)), int(r["input_len"]), int(r["output_len"]))
            for i, r in enumerate(rows)
        ]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InvalidRequestError(f"bad workload file {path}: {error}", param="dataset") from error
    if not reqs:
        raise InvalidRequestError(f"workload file {path} is empty", param="dataset")
    if rate is not None:
        gaps = np.random.default_rng(seed).exponential(1.0 / rate, len(reqs))
        for req, t in zip(reqs, np.cumsum(gaps)):
            req.arrival = float(t)
    return reqs
