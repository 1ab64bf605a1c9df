"""Proposer: the contract every draft source implements (n-gram lookup, draft model)."""

from __future__ import annotations

from typing import Protocol

from ponder.engine.request import Sequence


class Proposer(Protocol):
    # Relative cost of proposing one token, in target decode steps (0 for a table lookup).
    cost_per_token: float

    def propose(self, wanted: list[tuple[Sequence, int]]) -> list[list[int]]:
        """For each (sequence, k): up to k draft tokens that follow its token_ids (may be none).
        The drafts are a point guess (a delta distribution q), which is what makes verifying them
        by sample-and-match exact rejection sampling (rejection.py)."""
        ...

    def forget(self, seq_id: int) -> None:
        """Drop the per-sequence state of a finished or preempted sequence."""
        ...
