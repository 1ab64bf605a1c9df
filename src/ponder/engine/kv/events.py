"""KV events: the block pool says when a full block becomes reusable (stored) or is evicted
(removed), keyed by its prefix-chain hash, so a router in front of several replicas knows which
prefixes each one holds instead of guessing (as vLLM's and Dynamo's KV events do)."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

DEFAULT_CAPACITY = 1 << 16  # events kept for readers that poll; older ones are dropped


@dataclass(frozen=True)
class BlockStored:
    seq: int
    block_hash: int  # the chain hash: it covers the block's tokens and every block before it


@dataclass(frozen=True)
class BlockRemoved:
    seq: int
    block_hash: int


KVEvent = BlockStored | BlockRemoved


@dataclass(frozen=True)
class KVEventBatch:
    events: list[KVEvent]
    next_seq: int  # pass as after_seq next time
    # True when events after after_seq were dropped (the reader fell behind, or the engine
    # restarted): the reader's view is stale and should start over from these events.
    lost: bool


class KVEventLog:
    """A bounded, thread-safe log: the engine thread appends, readers poll with a cursor."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY):
        self._events: deque[KVEvent] = deque(maxlen=capacity)
        self._next_seq = 1
        self._lock = threading.Lock()

    def stored(self, block_hash: int) -> None:
        with self._lock:
            self._events.append(BlockStored(self._next_seq, block_hash))
            self._next_seq += 1

    def removed(self, block_hash: int) -> None:
        with self._lock:
            self._events.append(BlockRemoved(self._next_seq, block_hash))
            self._next_seq += 1

    def since(self, after_seq: int, limit: int | None = None) -> KVEventBatch:
        """Events with seq > after_seq (at most `limit`), oldest first."""
        with self._lock:
            oldest = self._events[0].seq if self._events else self._next_seq
            # A cursor ahead of the log means the engine restarted; one before its start, that
            # events were dropped. Either way the reader starts over from what is kept.
            lost = after_seq + 1 < oldest or after_seq >= self._next_seq
            skip = 0 if lost else after_seq + 1 - oldest
            events = [self._events[i] for i in range(skip, len(self._events))]
            last = self._next_seq - 1
        if limit is not None:
            events = events[:limit]
        next_seq = events[-1].seq if events else (last if lost else after_seq)
        return KVEventBatch(events, next_seq, lost)
