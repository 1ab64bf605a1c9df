"""Engine test fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module", params=[False, True], ids=["sync", "async"])
def async_scheduling(request) -> bool:
    """A test using this runs with synchronous and with asynchronous scheduling (on the CPU the
    asynchronous engine runs the same bookkeeping as on a GPU, without the overlap)."""
    return request.param
