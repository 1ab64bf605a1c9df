"""Trace confidence: sliding-window groups, lowest group, skipped forced tokens, percentiles."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ponder.reasoning.confidence import (
    SlidingGroupConfidence,
    group_confidences,
    lowest_group_confidence,
    mean_confidence,
    percentile,
    tail_confidence,
)


def test_groups_slide_over_known_tokens():
    values = [4.0, None, 2.0, 6.0, 0.0]  # None: a token the engine forced
    assert group_confidences(values, 2) == [3.0, 4.0, 3.0]
    assert lowest_group_confidence(values, 2) == 3.0
    assert mean_confidence(values) == 3.0
    assert tail_confidence(values, 2) == 3.0


def test_short_traces_are_one_group_and_empty_ones_score_zero():
    assert group_confidences([1.0, 3.0], 10) == [2.0]
    assert lowest_group_confidence([], 4) == 0.0 and mean_confidence(None) == 0.0


@given(st.lists(st.floats(0, 100), min_size=1, max_size=30), st.floats(0, 100))
def test_percentile_matches_numpy(values, percent):
    assert percentile(values, percent) == pytest.approx(np.percentile(values, percent), abs=1e-9)


@given(
    st.lists(st.one_of(st.none(), st.floats(0, 50)), max_size=60),
    st.integers(1, 8),
    st.integers(1, 7),
)
def test_online_groups_match_offline(values, window, chunk):
    online = SlidingGroupConfidence(window)
    currents = []
    for start in range(0, len(values), chunk):
        online.extend(values[start : start + chunk])
        if online.full:
            currents.append(online.current)
    offline = group_confidences(values, window)
    known = [v for v in values if v is not None]
    if len(known) >= window:
        assert online.lowest == pytest.approx(min(offline))
        assert currents[-1] == pytest.approx(offline[-1])
    else:
        assert online.lowest is None and not online.full
