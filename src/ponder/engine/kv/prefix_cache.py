"""Content hashes for full KV blocks: each covers its parent's hash and its own tokens (a chain)."""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Sequence

ROOT_HASH = 0


def hash_block(parent_hash: int, token_ids: Sequence[int]) -> int:
    # A keyed-free, process-independent digest, so hashes can be shared across workers later
    # (disaggregated prefill/decode); Python's hash() of a tuple would not be.
    digest = hashlib.blake2b(
        parent_hash.to_bytes(16, "little") + array("q", token_ids).tobytes(), digest_size=16
    ).digest()
    return int.from_bytes(digest, "little")


def extend_block_hashes(
    block_hashes: list[int], token_ids: Sequence[int], block_size: int, num_tokens: int
) -> None:
    """Append hashes for every full block within the first num_tokens tokens not hashed yet."""
    parent = block_hashes[-1] if block_hashes else ROOT_HASH
    for block_index in range(len(block_hashes), num_tokens // block_size):
        start = block_index * block_size
        parent = hash_block(parent, token_ids[start : start + block_size])
        block_hashes.append(parent)
