"""KVCacheManager: block tables of sequences, prefix-cache hits, copy-on-write and fork."""

from __future__ import annotations

from dataclasses import dataclass

from ponder.engine.kv.block_pool import BlockPool
from ponder.engine.kv.prefix_cache import extend_block_hashes
from ponder.engine.request import Sequence


@dataclass
class PrefixCacheStats:
    queries: int = 0  # prompt tokens looked up
    hits: int = 0  # of which found in the cache


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


class KVCacheManager:
    def __init__(self, num_blocks: int, block_size: int, enable_prefix_caching: bool = True):
        self.block_size = block_size
        self.enable_prefix_caching = enable_prefix_caching
        self.pool = BlockPool(num_blocks)
        self.prefix_stats = PrefixCacheStats()
        # (src, dst) block copies the model runner must do before the next forward
        self.pending_copies: list[tuple[int, int]] = []

    @property
    def num_blocks(self) -> int:
        return self.pool.num_blocks

    @property
    def num_free_blocks(self) -> int:
        return self.pool.num_free_blocks

    @property
    def usage(self) -> float:
        return self.pool.num_used_blocks / self.pool.num_blocks

    def match_prefix(self, seq: Sequence) -> int:
        """Attach the longest cached prefix to a sequence with no blocks; returns tokens reused.

        At least one token is always left to compute: its logits are needed to sample."""
        assert not seq.block_table and seq.num_computed_tokens == 0
        if not self.enable_prefix_caching or seq.params.prompt_logprobs is not None:
            return 0  # prompt logprobs need the logits of every prompt position
        extend_block_hashes(seq.block_hashes, seq.token_ids, self.block_size, seq.num_tokens - 1)
        for block_hash in seq.block_hashes:
            block_id = self.pool.lookup(block_hash)
            if block_id is None:
                break
            self.pool.acquire(block_id)
            seq.block_table.append(block_id)
        seq.num_published_blocks = len(seq.block_table)
        return len(seq.block_table) * self.block_size

    def count_cached_prefix(self, token_ids: list[int]) -> int:
        """Leading prompt tokens the prefix cache holds now (a read-only look; the last token is
        never counted: it is always computed). What a disaggregated router asks a decode worker."""
        if not self.enable_prefix_caching:
            return 0
        hashes: list[int] = []
        extend_block_hashes(hashes, token_ids, self.block_size, max(len(token_ids) - 1, 0))
        count = 0
        for block_hash in hashes:
            if self.pool.lookup(block_hash) is None:
                break
            count += 1
        return count * self.block_size

    def share_prefix(self, source: Sequence, seq: Sequence) -> int:
        """Attach the blocks of a live sequence that hold seq's leading tokens, its partly filled
        last block included (copied on write when seq writes into it); returns tokens reused.
        Unlike a prefix-cache hit this reuses a partial block, so a probe forked from a running
        thought computes only its own new tokens."""
        assert not seq.block_table and seq.num_computed_tokens == 0
        if seq.params.prompt_logprobs is not None:
            return 0
        limit = min(source.num_computed_tokens, len(source.token_ids), seq.num_tokens - 1)
        num_shared = limit if source.token_ids[:limit] == seq.token_ids[:limit] else 0  # the usual case
        while num_shared < limit and source.token_ids[num_shared] == seq.token_ids[num_shared]:
            num_shared += 1
        num_full = num_shared // self.block_size
        shared_blocks = source.block_table[: cdiv(num_shared, self.block_size)]
        for block_id in shared_blocks:
            self.pool.acquire(block_id)
        seq.block_table = list(shared_blocks)
        seq.block_hashes = source.block_hashes[:num_full]
        seq.num_published_blocks = min(source.num_published_blocks, num_full)
        return num_shared

    def record_prefix_lookup(self, num_tokens: int, num_cached: int) -> None:
        """Count a lookup once the sequence is admitted (a retried admission is no new query)."""
        self.prefix_stats.queries += num_tokens
        self.prefix_stats.hits += num_cached

    def allocate_slots(self, seq: Sequence, num_new_tokens: int) -> bool:
        """Make room for num_new_tokens more KV entries; False (and no change) if the pool is short."""
        needs_copy = self._needs_copy_on_write(seq)
        total = cdiv(seq.num_computed_tokens + num_new_tokens, self.block_size)
        num_new_blocks = total - len(seq.block_table)
        if num_new_blocks <= 0 and not needs_copy:
            return True  # a decode inside its last block: the common case, kept cheap
        if max(0, num_new_blocks) + int(needs_copy) > self.pool.num_free_blocks:
            return False
        if needs_copy:
            index = seq.num_computed_tokens // self.block_size
            shared = seq.block_table[index]
            private = self.pool.allocate()
            self.pending_copies.append((shared, private))
            self.pool.release(shared)
            seq.block_table[index] = private
        while len(seq.block_table) < total:
            seq.block_table.append(self.pool.allocate())
        return True

    def cache_computed_blocks(self, seq: Sequence) -> None:
        """Publish the sequence's newly computed full blocks for prefix reuse."""
        if not self.enable_prefix_caching:
            return
        # A block's hash needs its token ids: one computed from a token still on the device
        # (asynchronous scheduling) waits until that token reaches the host.
        num_known = min(seq.num_computed_tokens, len(seq.token_ids))
        num_full = num_known // self.block_size
        if num_full <= seq.num_published_blocks:
            return
        extend_block_hashes(seq.block_hashes, seq.token_ids, self.block_size, num_known)
        for block_index in range(seq.num_published_blocks, num_full):
            self.pool.register(seq.block_table[block_index], seq.block_hashes[block_index])
        seq.num_published_blocks = num_full

    def fork(self, parent: Sequence, child: Sequence) -> None:
        """The child shares every block of the parent; a shared partial block is copied on write."""
        for block_id in parent.block_table:
            self.pool.acquire(block_id)
        child.block_table = list(parent.block_table)
        child.block_hashes = list(parent.block_hashes)
        child.num_published_blocks = parent.num_published_blocks
        child.num_computed_tokens = parent.num_computed_tokens

    def free(self, seq: Sequence) -> None:
        # Release the tail first: it then gets evicted first, while the shared head stays cached.
        for block_id in reversed(seq.block_table):
            self.pool.release(block_id)
        seq.block_table = []
        seq.num_computed_tokens = 0
        seq.num_published_blocks = 0

    def take_pending_copies(self) -> list[tuple[int, int]]:
        """The copy-on-write copies queued since the last call; the next forward must do them."""
        copies, self.pending_copies = self.pending_copies, []
        return copies

    def reset_prefix_cache(self) -> None:
        self.pool.reset_prefix_cache()

    def _needs_copy_on_write(self, seq: Sequence) -> bool:
        # Only a partly filled last block is ever written again; full blocks are immutable.
        index = seq.num_computed_tokens // self.block_size
        if seq.num_computed_tokens % self.block_size == 0 or index >= len(seq.block_table):
            return False
        return self.pool.ref_counts[seq.block_table[index]] > 1
