"""Trace confidence from per-token confidences (DeepConf): mean, sliding-window groups, lowest group.

A token's confidence is -mean(top-k log-probabilities) (the engine's `confidences`): high when
the model is sure. Tokens the engine forced (a closed thought) carry None and are skipped.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence


def known(confidences: Iterable[float | None] | None) -> list[float]:
    return [value for value in confidences or () if value is not None]


def mean_confidence(confidences: Sequence[float | None] | None) -> float:
    values = known(confidences)
    return sum(values) / len(values) if values else 0.0


def group_confidences(confidences: Sequence[float | None] | None, window: int) -> list[float]:
    """Mean confidence of every window of `window` consecutive tokens (one group if shorter)."""
    values = known(confidences)
    if not values:
        return []
    if len(values) <= window:
        return [sum(values) / len(values)]
    running = sum(values[:window])
    groups = [running / window]
    for index in range(window, len(values)):
        running += values[index] - values[index - window]
        groups.append(running / window)
    return groups


def lowest_group_confidence(confidences: Sequence[float | None] | None, window: int) -> float:
    """DeepConf's trace score: the weakest stretch of reasoning decides."""
    groups = group_confidences(confidences, window)
    return min(groups) if groups else 0.0


def tail_confidence(confidences: Sequence[float | None] | None, num_tokens: int) -> float:
    """Mean confidence of the last `num_tokens` known tokens (where the answer is written)."""
    values = known(confidences)
    return mean_confidence(values[-num_tokens:]) if values else 0.0


def percentile(values: Sequence[float], percent: float) -> float:
    """Linear-interpolated percentile (numpy's default), without numpy."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * percent / 100.0
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class SlidingGroupConfidence:
    """The current group confidence of a live trace, updated token by token."""

    def __init__(self, window: int):
        self.window = window
        self._values: deque[float] = deque()
        self._sum = 0.0
        self.lowest: float | None = None  # over full windows seen so far

    def extend(self, confidences: Iterable[float | None]) -> None:
        for value in confidences:
            if value is None:
                continue
            self._values.append(value)
            self._sum += value
            if len(self._values) > self.window:
                self._sum -= self._values.popleft()
            if self.full:
                current = self.current
                self.lowest = current if self.lowest is None else min(self.lowest, current)

    @property
    def full(self) -> bool:
        return len(self._values) == self.window

    @property
    def current(self) -> float:
        return self._sum / len(self._values) if self._values else 0.0
