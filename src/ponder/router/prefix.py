"""What the router knows of each replica's prefix cache: the block hashes its KV events said are
stored, plus the prompts it just routed there (predicted, until events confirm or they expire)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from ponder.engine.kv.prefix_cache import extend_block_hashes

PREDICTION_TTL_S = 30.0


def prompt_block_hashes(token_ids: Sequence[int], block_size: int) -> list[int]:
    """The chain hashes the engine gives the prompt's full blocks. Like its prefix match, the last
    prompt token is left out: the engine always computes it, so it never counts as cached."""
    hashes: list[int] = []
    extend_block_hashes(hashes, token_ids, block_size, max(len(token_ids) - 1, 0))
    return hashes


class PrefixIndex:
    def __init__(self, prediction_ttl_s: float = PREDICTION_TTL_S):
        self.stored: set[int] = set()
        self._predicted: dict[int, float] = {}  # hash -> expiry time
        self.prediction_ttl_s = prediction_ttl_s

    def apply(self, events: Iterable[tuple[str, int]], lost: bool = False) -> None:
        """Events in order: ("stored" | "removed", block_hash). `lost`: start over from them."""
        if lost:
            self.stored.clear()
        for kind, block_hash in events:
            if kind == "stored":
                self.stored.add(block_hash)
            else:
                self.stored.discard(block_hash)
            self._predicted.pop(block_hash, None)

    def predict(self, block_hashes: Iterable[int], now: float | None = None) -> None:
        """A prompt was routed here: its blocks will be cached once it is prefilled. Counting them
        now keeps the next request of the same conversation from going elsewhere meanwhile."""
        expiry = (time.monotonic() if now is None else now) + self.prediction_ttl_s
        for block_hash in block_hashes:
            if block_hash not in self.stored:
                self._predicted[block_hash] = expiry

    def cached_blocks(self, block_hashes: Sequence[int], now: float | None = None) -> int:
        """How many leading blocks of the prompt this replica holds (a chain: stop at the first miss)."""
        now = time.monotonic() if now is None else now
        count = 0
        for block_hash in block_hashes:
            if block_hash in self.stored or self._predicted.get(block_hash, 0.0) > now:
                count += 1
            else:
                break
        return count

    def clear(self) -> None:
        self.stored.clear()
        self._predicted.clear()
