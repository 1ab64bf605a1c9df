"""Step-time model: t = overhead + per_token*tokens + per_seq*seqs + per_attn*attention work.

Attention work of a step is sum over its sequences of new_tokens * (context before + new/2): the
query-key pairs it computes. Fitted by least squares on measured engine steps, so the per-step
overhead (scheduling, sampling, detokenizing) is measured, not guessed."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ponder.errors import InvalidRequestError


@dataclass(frozen=True)
class StepModel:
    overhead_s: float
    per_token_s: float
    per_seq_s: float
    per_attn_s: float

    def step_time(self, tokens: int, seqs: int, attn: float) -> float:
        return self.overhead_s + self.per_token_s * tokens + self.per_seq_s * seqs + self.per_attn_s * attn

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


def fit(rows: list[tuple[int, int, float, float]]) -> StepModel:
    """rows: (tokens, seqs, attn, seconds) per measured step; coefficients clipped at 0."""
    import numpy as np

    if len(rows) < 4:
        raise InvalidRequestError("need at least 4 measured steps to fit", param="steps")
    x = np.array([[1.0, r[0], r[1], r[2]] for r in rows])
    y = np.array([r[3] for r in rows])
    coef = np.linalg.lstsq(x, y, rcond=None)[0]
    # A negative term is noise: drop it and refit the rest.
    keep = [i for i in range(4) if coef[i] > 0 or i == 0]
    coef2 = np.zeros(4)
    coef2[keep] = np.linalg.lstsq(x[:, keep], y, rcond=None)[0]
    coef2 = np.maximum(coef2, 0.0)
    return StepModel(*(float(c) for c in coef2))
