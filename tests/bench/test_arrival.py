"""Arrival process statistics: mean rate, Poisson / gamma dispersion, infinite rate."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from ponder.bench.arrival import arrival_offsets


def gaps(rate: float, burstiness: float, n: int, seed: int = 0) -> np.ndarray:
    offsets = list(itertools.islice(arrival_offsets(rate, burstiness, np.random.default_rng(seed)), n))
    return np.diff([0.0, *offsets])


@pytest.mark.parametrize("rate", [0.5, 4.0, 50.0])
def test_poisson_arrivals_have_the_requested_mean_rate(rate):
    intervals = gaps(rate, 1.0, 20_000)
    assert 1.0 / intervals.mean() == pytest.approx(rate, rel=0.03)
    # exponential gaps: coefficient of variation 1
    assert intervals.std() / intervals.mean() == pytest.approx(1.0, rel=0.05)


@pytest.mark.parametrize("burstiness", [0.25, 4.0])
def test_burstiness_is_the_gamma_shape_at_the_same_mean_rate(burstiness):
    intervals = gaps(10.0, burstiness, 20_000, seed=3)
    assert 1.0 / intervals.mean() == pytest.approx(10.0, rel=0.04)
    assert intervals.std() / intervals.mean() == pytest.approx(1 / math.sqrt(burstiness), rel=0.06)


def test_arrivals_are_increasing_and_seeded():
    first = list(itertools.islice(arrival_offsets(3.0, 1.0, np.random.default_rng(7)), 50))
    again = list(itertools.islice(arrival_offsets(3.0, 1.0, np.random.default_rng(7)), 50))
    assert first == again
    assert all(b > a for a, b in zip(first, first[1:], strict=False)) and first[0] > 0


def test_infinite_rate_sends_everything_at_once():
    assert list(itertools.islice(arrival_offsets(math.inf, 1.0, np.random.default_rng()), 5)) == [0.0] * 5
