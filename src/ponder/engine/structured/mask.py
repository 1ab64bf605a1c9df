"""Batched token masks: the constrained rows of a batch fill one int32 bitmask on the host, which
is unpacked on the logits' device and applied with one masked_fill. Unconstrained rows (and
batches with none) cost nothing."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import torch

from ponder.engine.transfers import to_device


class TokenConstraint(Protocol):
    """What the sampler needs from a sequence's constraint (StructuredState is one)."""

    @property
    def active(self) -> bool: ...

    def fill_bitmask(self, bitmask: torch.Tensor, row: int) -> None: ...


def constrained_rows(constraints: Sequence[TokenConstraint | None]) -> list[int]:
    return [i for i, constraint in enumerate(constraints) if constraint is not None and constraint.active]


def apply_token_constraints(logits: torch.Tensor, constraints: Sequence[TokenConstraint | None]) -> None:
    """In place: in every row whose constraint is active, tokens it does not allow get -inf."""
    rows = constrained_rows(constraints)
    if not rows:
        return
    vocab_size = logits.shape[1]
    bitmask = torch.full((len(rows), (vocab_size + 31) // 32), -1, dtype=torch.int32)
    for slot, row in enumerate(rows):
        constraint = constraints[row]
        assert constraint is not None
        constraint.fill_bitmask(bitmask, slot)
    allowed = unpack_bitmask(bitmask.to(logits.device, non_blocking=True), vocab_size)
    if len(rows) == logits.shape[0]:
        logits.masked_fill_(~allowed, -math.inf)
        return
    index = to_device(rows, torch.int64, logits.device)
    selected = logits.index_select(0, index)
    selected.masked_fill_(~allowed, -math.inf)
    logits.index_copy_(0, index, selected)


def unpack_bitmask(bitmask: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """[rows, words] int32 -> [rows, vocab_size] bool; bit i of word w is token 32 w + i."""
    shifts = torch.arange(32, dtype=torch.int32, device=bitmask.device)
    bits = (bitmask[:, :, None] >> shifts) & 1
    return bits.reshape(bitmask.shape[0], -1)[:, :vocab_size].bool()
