"""Prompt-lookup (n-gram) proposer: if the last n tokens occurred before, propose what followed.

Reasoning text repeats itself (restated numbers, re-checked steps), so the sequence's own
history is a free draft model. Each sequence keeps an index n-gram -> last end position,
extended incrementally, so a lookup costs O(ngram_max) and not O(length)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ponder.engine.request import Sequence


@dataclass
class _NgramIndex:
    # (n-gram) -> index just after its most recent occurrence ending before the last token
    last_end: dict[tuple[int, ...], int] = field(default_factory=dict)
    num_indexed: int = 0  # occurrences ending before this position are in last_end


class NgramProposer:
    cost_per_token = 0.0

    def __init__(self, ngram_min: int, ngram_max: int):
        self.ngram_min = ngram_min
        self.ngram_max = ngram_max
        self._indexes: dict[int, _NgramIndex] = {}

    def propose(self, wanted: list[tuple[Sequence, int]]) -> list[list[int]]:
        return [self.propose_one(seq.seq_id, seq.token_ids, k) for seq, k in wanted]

    def propose_one(self, key: int, token_ids: list[int], k: int) -> list[int]:
        index = self._indexes.setdefault(key, _NgramIndex())
        length = len(token_ids)
        self._extend(index, token_ids, length - 1)  # the n-gram that ends at the last token is the query
        for n in range(min(self.ngram_max, length - 1), self.ngram_min - 1, -1):
            end = index.last_end.get(tuple(token_ids[length - n :]))
            if end is not None:
                return token_ids[end : end + k]
        return []

    def _extend(self, index: _NgramIndex, token_ids: list[int], upto: int) -> None:
        """Index every n-gram that ends before position `upto` (exclusive end <= upto)."""
        table = index.last_end
        for end in range(max(index.num_indexed, self.ngram_min), upto + 1):
            for n in range(self.ngram_min, min(self.ngram_max, end) + 1):
                table[tuple(token_ids[end - n : end])] = end
        index.num_indexed = max(index.num_indexed, upto + 1)

    def forget(self, seq_id: int) -> None:
        self._indexes.pop(seq_id, None)
