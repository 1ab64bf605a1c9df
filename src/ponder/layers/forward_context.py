"""Per-step attention metadata, set once by the model runner and read by every attention layer.

Keeps model code free of batching details: a model's forward takes only token ids and positions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ponder.kernels.attention_metadata import AttentionMetadata

_current: AttentionMetadata | None = None


@contextmanager
def forward_context(metadata: AttentionMetadata) -> Iterator[None]:
    global _current
    previous, _current = _current, metadata
    try:
        yield
    finally:
        _current = previous


def get_attention_metadata() -> AttentionMetadata:
    if _current is None:
        raise RuntimeError(
            "attention layer called outside forward_context(); the model runner sets it"
        )
    return _current
