"""StepCostModel: what one more verified draft token costs, measured on this machine.

The gain of speculation depends on how much dearer a step that verifies drafts is than a plain
decode step of the same batch, and that varies by hardware, batch size and kernel (on a CPU
the reference attention runs a multi-token query per sequence in its own loop, so at batch 8 a
verify step can cost twice a decode step). So the engine times its pure decode steps (no
prefill chunk in the batch), per batch-size bucket, with and without drafts, and derives the
cost per draft token from the ratio of the median times. Until both are measured (and
MIN_COST_SAMPLES costs are in), the configured prior is used. On a CPU the clock is the process's
CPU time: wall time on a shared machine swings with other load by more than the effect measured."""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

WINDOW = 15  # step times kept per bucket and kind; the median of them is used
REFRESH_INTERVAL = 32  # a plain step this often keeps the plain time of a bucket current
# The prior holds until a bucket has this many cost samples: the first verify step of a shape can
# take tens of plain steps (allocation, kernel set-up), and one such sample alone switched
# speculation off for good.
MIN_COST_SAMPLES = 3
# A bucket spans batch sizes up to 2x apart, and on a CPU a step's time grows with its batch: a
# verify step of 4 sequences judged against a plain step of 7 read as nearly free (c -> 0), so
# speculation ran on where it lost. So a verify step is compared with plain steps of its own
# batch size, and a batch size the window has no plain step of gets one, at most every this
# many steps of the bucket (a step without drafts only forgoes one step's gain).
EXACT_PLAIN_GAP = 8


def _window() -> deque[Any]:
    return deque(maxlen=WINDOW)


@dataclass
class _Bucket:
    plain: deque[tuple[float, int]] = field(default_factory=_window)  # (seconds, batch size) without drafts
    # step time per draft per sequence, relative: (t / plain - 1) / drafts per sequence
    cost: deque[float] = field(default_factory=_window)
    steps: int = 0
    last_plain_step: int = 0

    def plain_time(self, num_seqs: int) -> float | None:
        """Median plain step time at this batch size, else over the bucket; None if none."""
        exact = [t for t, n in self.plain if n == num_seqs]
        if exact:
            return statistics.median(exact)
        return statistics.median(t for t, _ in self.plain) if self.plain else None


@dataclass
class _OpenStep:
    bucket: int
    num_drafts: int
    num_seqs: int
    start: float


class StepCostModel:
    def __init__(self, prior_cost_per_token: float, clock: Callable[[], float] = time.perf_counter):
        self.prior = prior_cost_per_token
        self.clock = clock
        self._buckets: dict[int, _Bucket] = {}
        self._open: _OpenStep | None = None

    @staticmethod
    def bucket_of(num_seqs: int) -> int:
        return num_seqs.bit_length()  # 1, 2-3, 4-7, 8-15, ...

    def cost_per_token(self, num_seqs: int) -> float:
        bucket = self._buckets.get(self.bucket_of(num_seqs))
        if bucket is None or len(bucket.cost) < MIN_COST_SAMPLES:
            return self.prior
        return max(0.0, statistics.median(bucket.cost))

    def wants_plain_step(self, num_seqs: int) -> bool:
        """Whether this step should run without drafts to measure (or refresh) the plain time."""
        bucket = self._buckets.setdefault(self.bucket_of(num_seqs), _Bucket())
        bucket.steps += 1
        plain = not bucket.plain or bucket.steps % REFRESH_INTERVAL == 0
        if not plain and all(n != num_seqs for _, n in bucket.plain):
            plain = bucket.steps - bucket.last_plain_step >= EXACT_PLAIN_GAP
        if plain:
            bucket.last_plain_step = bucket.steps
        return plain

    def step_started(self, num_seqs: int, pure_decode: bool) -> None:
        """Close the step before (its time ends where this one starts, before any proposing)
        and open this one; its drafts are told by set_drafts once proposed."""
        now = self.clock()
        self._close(now)
        if pure_decode:
            self._open = _OpenStep(self.bucket_of(num_seqs), 0, num_seqs, now)

    def set_drafts(self, num_drafts: int) -> None:
        if self._open is not None:
            self._open.num_drafts = num_drafts

    def _close(self, now: float) -> None:
        step, self._open = self._open, None
        if step is None:
            return
        seconds = now - step.start
        bucket = self._buckets.setdefault(step.bucket, _Bucket())
        if step.num_drafts == 0:
            bucket.plain.append((seconds, step.num_seqs))
        else:
            plain = bucket.plain_time(step.num_seqs)
            if plain is not None and plain > 0:
                bucket.cost.append((seconds / plain - 1.0) / (step.num_drafts / step.num_seqs))
