"""Step-time model: t = overhead + per_token*tokens + per_seq*seqs + per_attn*attention work
+ per_sample*sampled, plus a fixed per-request latency (request_overhead_s) the simulator adds
before a request reaches a worker (HTTP, validation, first delivery).

Attention work of a step is sum over its sequences of new_tokens * (context before + new/2): the
query-key pairs it computes. `sampled` counts the sequences that sample a token (decodes and
last prefill chunks): sampling, detokenizing and streaming cost per token, not per input token.
Fitted by least squares on measured engine steps, so the per-step overhead (scheduling,
sampling, detokenizing) is measured, not guessed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ponder.errors import InvalidRequestError


@dataclass(frozen=True)
class StepModel:
    overhead_s: float
    per_token_s: float
    per_seq_s: float
    per_attn_s: float
    per_sample_s: float = 0.0
    request_overhead_s: float = 0.0

    def step_time(self, tokens: int, seqs: int, attn: float, sampled: int = 0) -> float:
        return (
            self.overhead_s
            + self.per_token_s * tokens
            + self.per_seq_s * seqs
            + self.per_attn_s * attn
            + self.per_sample_s * sampled
        )

    def save(self, path: str | Path, **extra: object) -> None:
        Path(path).write_text(json.dumps({"step_model": asdict(self), **extra}, indent=2))

    @classmethod
    def load(cls, path: str | Path) -> StepModel:
        try:
            data = json.loads(Path(path).read_text())
            return cls(**data["step_model"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise InvalidRequestError(f"not a ponder profile: {path} ({error})", param="profile") from error


def attn_work(new_tokens: list[int], computed: list[int]) -> float:
    return float(sum(n * (c + n / 2) for n, c in zip(new_tokens, computed)))


def fit(
    rows: Sequence[Sequence[float]], stall: float | None = 3.0, prior: StepModel | None = None
) -> StepModel:
    """rows: (tokens, seqs, attn, seconds) or (tokens, seqs, attn, sampled, seconds) per measured
    step. Coefficients are kept >= 0 (a negative one is noise: it is dropped and the rest refit).
    A second pass weights each step by 1/predicted time, so the many small decode steps count as
    much as the few long prefills (relative error), while the fit stays one of the mean.
    stall: a step slower than stall x its prediction is a stall (on a shared host the process
    was off the CPU), not a cost of its batch; those are left out of a last refit. None keeps all.
    prior: where the steps cannot tell two terms apart (a decode worker's steps have tokens ==
    sequences == sampled; a prefill worker's, one prompt length each), the fit stays at the prior's
    split (least squares of the change from the prior, minimum norm) instead of splitting them
    evenly, e.g. a per-role model with the prior of all workers' steps pooled."""
    import numpy as np

    if len(rows) < 4:
        raise InvalidRequestError("need at least 4 measured steps to fit", param="steps")
    if len({len(r) for r in rows}) != 1 or len(rows[0]) not in (4, 5):
        raise InvalidRequestError("steps must all be (tokens, seqs, attn[, sampled], seconds)", param="steps")
    data = np.array(rows, dtype=float)
    features = data[:, :-1] if data.shape[1] == 5 else np.column_stack([data[:, :3], np.zeros(len(data))])
    x = np.column_stack([np.ones(len(data)), features])
    y = data[:, -1]
    floor = max(float(np.median(y)) * 1e-3, 1e-9)
    base = np.zeros(x.shape[1]) if prior is None else np.array(_coefficients(prior))
    # With a prior, directions the steps barely tell apart (a prefill worker's prompts of 512 and
    # 522 tokens: intercept vs per-token) keep the prior too, not only the exactly inseparable.
    rcond = None if prior is None else PRIOR_RCOND

    def weighted(keep):
        coef = _nonnegative_lstsq(x[keep], y[keep], base, rcond)
        predicted = np.maximum(x[keep] @ coef, floor)
        return _nonnegative_lstsq(x[keep] / predicted[:, None], y[keep] / predicted, base, rcond)

    everything = np.ones(len(y), dtype=bool)
    coef = weighted(everything)
    if stall is not None:
        normal = y <= stall * np.maximum(x @ coef, floor)
        if normal.sum() >= 4 and not normal.all():
            coef = weighted(normal)
    return StepModel(*(float(c) for c in coef))


def stalls(model: StepModel, rows: Sequence[Sequence[float]], stall: float = 3.0) -> int:
    """How many of these 5-column rows are stalls by `fit`'s rule under this model."""
    return sum(1 for t, s, a, k, y in rows if y > stall * model.step_time(int(t), int(s), a, int(k)))


def _coefficients(model: StepModel) -> tuple[float, ...]:
    return (model.overhead_s, model.per_token_s, model.per_seq_s, model.per_attn_s, model.per_sample_s)


PRIOR_RCOND = 0.02  # singular values below 2 % of the largest (unit-norm columns): the prior's


def _nonnegative_lstsq(x, y, base, rcond=None):
    """Least squares, coefficients >= 0: base + the minimum-norm change from base (columns
    scaled to unit norm first, so "minimum" does not depend on each feature's units)."""
    import numpy as np

    keep = [i for i in range(x.shape[1]) if np.any(x[:, i] != 0) or i == 0]
    while True:
        coef = np.zeros(x.shape[1])
        cols = x[:, keep]
        scale = np.linalg.norm(cols, axis=0)
        scale[scale == 0] = 1.0
        change = np.linalg.lstsq(cols / scale, y - cols @ base[keep], rcond=rcond)[0] / scale
        coef[keep] = base[keep] + change
        negative = [i for i in keep if i != 0 and coef[i] < 0]
        if not negative:
            return np.maximum(coef, 0.0)
        keep.remove(min(negative, key=lambda i: coef[i]))
