"""Per-step attention metadata, set once by the model runner and read by every attention layer.

Keeps model code free of batching details: a model's forward takes only token ids and positions.
A context variable, not a global: a server hosting several models steps their engines in
threads of their own, and each forward must see its own batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from ponder.kernels.attention_metadata import AttentionMetadata

_current: ContextVar[AttentionMetadata | None] = ContextVar("attention_metadata", default=None)


@contextmanager
def forward_context(metadata: AttentionMetadata) -> Iterator[None]:
    token = _current.set(metadata)
    try:
        yield
    finally:
        _current.reset(token)


def get_attention_metadata() -> AttentionMetadata:
    metadata = _current.get()
    if metadata is None:
        raise RuntimeError("attention layer called outside forward_context(); the model runner sets it")
    return metadata
