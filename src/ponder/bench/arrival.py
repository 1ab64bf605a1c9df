"""When requests are sent: a gamma renewal process (Poisson at burstiness 1) at a mean rate."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np


def arrival_offsets(rate: float, burstiness: float, rng: np.random.Generator) -> Iterator[float]:
    """Endless send times in seconds from the start, with mean gap 1/rate.

    Gaps are Gamma(shape=burstiness, scale=1/(rate*burstiness)), as in vLLM: shape 1 is a
    Poisson process; below 1 requests come in bursts, above 1 more evenly. An infinite rate
    sends everything at once.
    """
    if math.isinf(rate):
        while True:
            yield 0.0
    scale = 1.0 / (rate * burstiness)
    elapsed = 0.0
    while True:
        elapsed += float(rng.gamma(shape=burstiness, scale=scale))
        yield elapsed
