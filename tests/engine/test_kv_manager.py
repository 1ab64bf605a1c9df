"""Block pool, prefix cache hash chain, copy-on-write and fork."""

import pytest

from ponder.engine.kv.block_pool import BlockPool, OutOfBlocksError
from ponder.engine.kv.manager import KVCacheManager
from ponder.engine.kv.prefix_cache import ROOT_HASH, extend_block_hashes, hash_block

from ._fakes import make_seq


def test_pool_allocates_least_recently_freed_first_and_evicts_hash():
    pool = BlockPool(3)
    a, b, c = pool.allocate(), pool.allocate(), pool.allocate()
    with pytest.raises(OutOfBlocksError):
        pool.allocate()
    pool.register(b, 123)
    pool.release(b)
    pool.release(a)
    assert pool.lookup(123) == b  # freed but still cached
    assert pool.allocate() == b  # least recently freed goes first ...
    assert pool.lookup(123) is None  # ... and loses its cached content
    pool.release(c)
    assert pool.num_free_blocks == 2


def test_release_more_than_acquire_is_an_error():
    pool = BlockPool(1)
    block = pool.allocate()
    pool.release(block)
    with pytest.raises(RuntimeError, match="released more often"):
        pool.release(block)


def test_hash_chain_depends_on_parent_and_tokens():
    h1 = hash_block(ROOT_HASH, [1, 2])
    assert h1 == hash_block(ROOT_HASH, [1, 2])
    assert h1 != hash_block(ROOT_HASH, [2, 1])
    assert hash_block(h1, [3, 4]) != hash_block(ROOT_HASH, [3, 4])
    hashes: list[int] = []
    extend_block_hashes(hashes, [1, 2, 3, 4, 5], block_size=2, num_tokens=5)
    assert hashes == [h1, hash_block(h1, [3, 4])]


def test_prefix_hit_reuses_full_blocks_but_leaves_last_token():
    kv = KVCacheManager(num_blocks=8, block_size=4)
    first = make_seq(list(range(10)))
    assert kv.match_prefix(first) == 0
    assert kv.allocate_slots(first, 10)
    first.num_computed_tokens = 10
    kv.cache_computed_blocks(first)  # blocks 0 and 1 are full -> cached
    second = make_seq(list(range(8)) + [99, 98, 97])
    assert kv.match_prefix(second) == 8
    assert second.block_table == first.block_table[:2]
    assert kv.pool.ref_counts[first.block_table[0]] == 2
    # A prompt that is exactly the cached blocks still computes its last token.
    third = make_seq(list(range(8)))
    assert kv.match_prefix(third) == 4


def computed(kv: KVCacheManager, tokens: list[int]):
    """A sequence whose KV for all of `tokens` is written."""
    seq = make_seq(tokens)
    kv.match_prefix(seq)
    assert kv.allocate_slots(seq, len(tokens))
    seq.num_computed_tokens = len(tokens)
    return seq


def test_fork_shares_blocks_and_copies_partial_block_on_write():
    kv = KVCacheManager(num_blocks=8, block_size=4)
    parent = computed(kv, list(range(6)))
    child = make_seq(list(range(6)))
    kv.fork(parent, child)
    assert child.block_table == parent.block_table
    full, partial = parent.block_table
    # The child writes position 6 into the shared partial block: it gets a private copy.
    assert kv.allocate_slots(child, 1)
    assert child.block_table[0] == full and child.block_table[1] != partial
    assert kv.pending_copies == [(partial, child.block_table[1])]
    # The parent is now the only owner of the partial block and writes in place.
    assert kv.allocate_slots(parent, 1)
    assert parent.block_table == [full, partial]
    assert len(kv.pending_copies) == 1
    kv.free(parent)
    kv.free(child)
    assert kv.num_free_blocks == 8


def test_allocate_fails_without_side_effects():
    kv = KVCacheManager(num_blocks=2, block_size=4)
    seq = make_seq(list(range(12)))
    assert not kv.allocate_slots(seq, 12)
    assert seq.block_table == [] and kv.num_free_blocks == 2


def test_share_prefix_takes_a_live_sequences_blocks_up_to_the_first_differing_token():
    kv = KVCacheManager(num_blocks=8, block_size=4)
    source = computed(kv, list(range(10)))
    kv.cache_computed_blocks(source)
    # A probe of the source: its 10 tokens (two full blocks and a partial one) plus new text.
    probe = make_seq(list(range(10)) + [77, 78])
    assert kv.share_prefix(source, probe) == 10
    assert probe.block_table == source.block_table
    assert probe.num_published_blocks == 2 and probe.block_hashes == source.block_hashes[:2]
    probe.num_computed_tokens = 10
    assert kv.allocate_slots(probe, 2)  # writes into the shared partial block: copied first
    assert kv.pending_copies == [(source.block_table[2], probe.block_table[2])]
    assert probe.block_table[:2] == source.block_table[:2]
    # Only the tokens both hold are shared, and never the last token of the new prompt.
    differs = make_seq(list(range(6)) + [50, 51, 52])
    assert kv.share_prefix(source, differs) == 6
    assert differs.block_table == source.block_table[:2]
    same = make_seq(list(range(10)))
    assert kv.share_prefix(source, same) == 9
    for seq in (source, probe, differs, same):
        kv.free(seq)
    assert kv.num_free_blocks == 8
