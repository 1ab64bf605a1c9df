"""StepCostModel: what one more verified draft token costs, measured on this machine.

The gain of speculation depends on how much dearer a step that verifies drafts is than a plain
decode step of the same batch, and that varies by hardware, batch size and kernel (on a CPU
the reference attention runs a multi-token query per sequence in its own loop, so at batch 8 a
verify step can cost twice a decode step). So the engine times its pure decode steps (no
prefill chunk in the batch), per batch-size bucket, with and without drafts, and derives the
cost per draft token from the ratio. Until both are measured, the configured prior is used."""

from __future__ import annotations

import time
from dataclasses import dataclass

SMOOTHING = 0.2  # weight of a new step time in the moving averages
REFRESH_INTERVAL = 32  # a plain step this often keeps the plain time of a bucket current
OUTLIER = 5.0  # a step this many times the average (an idle gap, a hiccup) is not counted


@dataclass
class _Bucket:
    plain_s: float | None = None  # average step time without drafts
    spec_s: float | None = None  # average step time with drafts
    drafts_per_seq: float = 0.0  # average drafts per decoding sequence in those steps
    steps: int = 0


@dataclass
class _OpenStep:
    bucket: int
    num_drafts: int
    num_seqs: int
    start: float


def _average(old: float | None, new: float) -> float:
    return new if old is None else (1 - SMOOTHING) * old + SMOOTHING * new


class StepCostModel:
    def __init__(self, prior_cost_per_token: float):
        self.prior = prior_cost_per_token
        self._buckets: dict[int, _Bucket] = {}
        self._open: _OpenStep | None = None

    @staticmethod
    def bucket_of(num_seqs: int) -> int:
        return num_seqs.bit_length()  # 1, 2-3, 4-7, 8-15, ...

    def cost_per_token(self, num_seqs: int) -> float:
        bucket = self._buckets.get(self.bucket_of(num_seqs))
        if bucket is None or bucket.plain_s is None or bucket.spec_s is None or bucket.drafts_per_seq <= 0:
            return self.prior
        return max(0.0, (bucket.spec_s / bucket.plain_s - 1.0) / bucket.drafts_per_seq)

    def wants_plain_step(self, num_seqs: int) -> bool:
        """Whether this step should run without drafts to measure (or refresh) the plain time."""
        bucket = self._buckets.setdefault(self.bucket_of(num_seqs), _Bucket())
        bucket.steps += 1
        return bucket.plain_s is None or bucket.steps % REFRESH_INTERVAL == 0

    def step_started(self, num_seqs: int, num_drafts: int, pure_decode: bool) -> None:
        """Close the step before (its time ends where this one starts) and open this one."""
        now = time.perf_counter()
        self._close(now)
        if pure_decode:
            self._open = _OpenStep(self.bucket_of(num_seqs), num_drafts, num_seqs, now)

    def _close(self, now: float) -> None:
        step, self._open = self._open, None
        if step is None:
            return
        seconds = now - step.start
        bucket = self._buckets.setdefault(step.bucket, _Bucket())
        if step.num_drafts == 0:
            if bucket.plain_s is None or seconds < OUTLIER * bucket.plain_s:
                bucket.plain_s = _average(bucket.plain_s, seconds)
            return
        if bucket.spec_s is None or seconds < OUTLIER * bucket.spec_s:
            bucket.spec_s = _average(bucket.spec_s, seconds)
            bucket.drafts_per_seq = _average(bucket.drafts_per_seq or None, step.num_drafts / step.num_seqs)
