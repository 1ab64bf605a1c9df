"""Step-time model: t = overhead + per_token*tokens**token_exponent + per_seq*seqs + per_attn*attention
work + per_sample*sampled, plus a fixed per-request latency (request_overhead_s) the simulator adds
before a request reaches a worker (HTTP, validation, first delivery).

Attention work of a step is sum over its sequences of new_tokens * (context before + new/2): the
query-key pairs it computes. `sampled` counts the sequences that sample a token (decodes and
last prefill chunks): sampling, detokenizing and streaming cost per token, not per input token.
Fitted by least squares on measured engine steps, so the per-step overhead (scheduling,
sampling, detokenizing) is measured, not guessed.

token_exponent < 1 makes the token term sublinear: on CPU a 256-token chunk costs less than 256
times a token's share of a small step (the matmuls get more efficient as the batch grows). `fit`
picks it from EXPONENTS by the error on held-out steps (5 interleaved folds), so a linear model
stays linear unless the steps say otherwise."""

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
    token_exponent: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.token_exponent <= 1.0:
            raise InvalidRequestError(
                f"token_exponent must be in (0, 1], got {self.token_exponent}", param="token_exponent"
            )

    def step_time(self, tokens: int, seqs: int, attn: float, sampled: int = 0) -> float:
        return (
            self.overhead_s
            + self.per_token_s * tokens**self.token_exponent
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
        except (OSError, ValueError, KeyError, TypeError, InvalidRequestError) as error:
            raise InvalidRequestError(f"not a ponder profile: {path} ({error})", param="profile") from error


def attn_work(new_tokens: list[int], computed: list[int]) -> float:
    return float(sum(n * (c + n / 2) for n, c in zip(new_tokens, computed)))


EXPONENTS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)  # token_exponent candidates; 1.0 first wins ties
FOLDS = 5


def fit(
    rows: Sequence[Sequence[float]],
    stall: float | None = 3.0,
    prior: StepModel | None = None,
    exponents: Sequence[float] | None = None,
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
    evenly, e.g. a per-role model with the prior of all workers' steps pooled; its token_exponent
    too.
    exponents: token_exponent candidates (default EXPONENTS, or the prior's); with more than one,
    the one whose fits predict held-out steps best (mean relative error over FOLDS interleaved
    folds, stalls left out) is kept."""
    import numpy as np

    if len(rows) < 4:
        raise InvalidRequestError("need at least 4 measured steps to fit", param="steps")
    if len({len(r) for r in rows}) != 1 or len(rows[0]) not in (4, 5):
        raise InvalidRequestError("steps must all be (tokens, seqs, attn[, sampled], seconds)", param="steps")
    data = np.array(rows, dtype=float)
    if not np.all(np.isfinite(data)) or np.any(data < 0) or np.any(data[:, -1] <= 0):
        raise InvalidRequestError("steps must be finite, >= 0, with seconds > 0", param="steps")
    if exponents is None:
        exponents = EXPONENTS if prior is None else (prior.token_exponent,)
    if not exponents or any(not 0.0 < e <= 1.0 for e in exponents):
        raise InvalidRequestError(f"token exponents must be in (0, 1], got {exponents}", param="exponents")
    base = np.zeros(5) if prior is None else np.array(_coefficients(prior))
    best = exponents[0]
    if len(exponents) > 1 and len(data) >= 4 * FOLDS:
        errors = [_held_out_error(data, e, stall, base, prior is not None) for e in exponents]
        # The first (the most linear) of those as good as the best: where the steps cannot tell
        # the exponent (tokens == sequences in pure decode steps), it stays 1.
        best = next(e for e, err in zip(exponents, errors) if err <= min(errors) * (1 + 1e-3) + 1e-9)
    coef = _fit_at(data, best, stall, base, prior is not None)
    return StepModel(*(float(c) for c in coef), token_exponent=float(best))


def _design(data, exponent: float):
    import numpy as np

    features = data[:, :-1] if data.shape[1] == 5 else np.column_stack([data[:, :3], np.zeros(len(data))])
    x = np.column_stack([np.ones(len(data)), features])
    x[:, 1] = x[:, 1] ** exponent
    return x


def _fit_at(data, exponent: float, stall: float | None, base, with_prior: bool):
    import numpy as np

    x, y = _design(data, exponent), data[:, -1]
    floor = max(float(np.median(y)) * 1e-3, 1e-9)
    # With a prior, directions the steps barely tell apart (a prefill worker's prompts of 512 and
    # 522 tokens: intercept vs per-token) keep the prior too, not only the exactly inseparable.
    rcond = PRIOR_RCOND if with_prior else None

    def weighted(keep):
        coef = nonnegative_lstsq(x[keep], y[keep], base, rcond)
        predicted = np.maximum(x[keep] @ coef, floor)
        return nonnegative_lstsq(x[keep] / predicted[:, None], y[keep] / predicted, base, rcond)

    coef = weighted(np.ones(len(y), dtype=bool))
    if stall is not None:
        normal = y <= stall * np.maximum(x @ coef, floor)
        if normal.sum() >= 4 and not normal.all():
            coef = weighted(normal)
    return coef


def _held_out_error(data, exponent: float, stall: float | None, base, with_prior: bool) -> float:
    """Mean |predicted / measured - 1| over steps each predicted by a fit without its fold."""
    import numpy as np

    fold = np.arange(len(data)) % FOLDS
    errors = []
    for k in range(FOLDS):
        coef = _fit_at(data[fold != k], exponent, stall, base, with_prior)
        test = data[fold == k]
        predicted, y = _design(test, exponent) @ coef, test[:, -1]
        normal = y <= (stall or np.inf) * np.maximum(predicted, 1e-12)
        errors.append(np.abs(predicted[normal] / y[normal] - 1))
    return float(np.mean(np.concatenate(errors)))


def stalls(model: StepModel, rows: Sequence[Sequence[float]], stall: float = 3.0) -> int:
    """How many of these 5-column rows are stalls by `fit`'s rule under this model."""
    return sum(1 for t, s, a, k, y in rows if y > stall * model.step_time(int(t), int(s), a, int(k)))


def _coefficients(model: StepModel) -> tuple[float, ...]:
    return (model.overhead_s, model.per_token_s, model.per_seq_s, model.per_attn_s, model.per_sample_s)


PRIOR_RCOND = 0.02  # singular values below 2 % of the largest (unit-norm columns): the prior's


def nonnegative_lstsq(x, y, base, rcond=None):
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
