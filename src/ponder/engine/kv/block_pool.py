"""BlockPool: fixed-size KV blocks with reference counts, a content-hash index and an LRU free list."""

from __future__ import annotations

from collections import OrderedDict

from ponder.engine.kv.events import KVEventLog


class OutOfBlocksError(RuntimeError):
    """Raised by allocate() when no block is free; callers check num_free_blocks first."""


class BlockPool:
    """Owns block ids 0..num_blocks-1.

    A block with ref_count 0 is free. A free block may still hold a cached prefix (it keeps its
    hash) until it is reused: free blocks are handed out least-recently-freed first, so cached
    prefixes survive as long as possible.
    """

    def __init__(self, num_blocks: int):
        self.num_blocks = num_blocks
        self.ref_counts = [0] * num_blocks
        self.block_hashes: list[int | None] = [None] * num_blocks
        self._free: OrderedDict[int, None] = OrderedDict((i, None) for i in range(num_blocks))
        self._cached: dict[int, int] = {}  # content hash -> block id
        self.events = KVEventLog()  # what a router learns this pool's cached prefixes from

    @property
    def num_free_blocks(self) -> int:
        return len(self._free)

    @property
    def num_used_blocks(self) -> int:
        return self.num_blocks - len(self._free)

    def allocate(self) -> int:
        if not self._free:
            raise OutOfBlocksError("no free KV block")
        block_id, _ = self._free.popitem(last=False)
        self._forget_hash(block_id)
        self.ref_counts[block_id] = 1
        return block_id

    def acquire(self, block_id: int) -> None:
        """Take one more reference (a prefix hit or a fork)."""
        if self.ref_counts[block_id] == 0:
            del self._free[block_id]
        self.ref_counts[block_id] += 1

    def release(self, block_id: int) -> None:
        count = self.ref_counts[block_id]
        if count <= 0:
            raise RuntimeError(f"block {block_id} released more often than acquired")
        self.ref_counts[block_id] = count - 1
        if count == 1:
            self._free[block_id] = None

    def lookup(self, block_hash: int) -> int | None:
        return self._cached.get(block_hash)

    def register(self, block_id: int, block_hash: int) -> None:
        """Publish a full, computed block under its content hash (first writer wins)."""
        if self.block_hashes[block_id] is not None or block_hash in self._cached:
            return
        self.block_hashes[block_id] = block_hash
        self._cached[block_hash] = block_id
        self.events.stored(block_hash)

    def reset_prefix_cache(self) -> None:
        for block_id, block_hash in enumerate(self.block_hashes):
            if block_hash is not None:
                self._forget_hash(block_id)

    def _forget_hash(self, block_id: int) -> None:
        block_hash = self.block_hashes[block_id]
        if block_hash is not None:
            self.block_hashes[block_id] = None
            if self._cached.get(block_hash) == block_id:
                del self._cached[block_hash]
                self.events.removed(block_hash)
