"""Token-budget scheduler: running sequences first, then prefill chunks of waiting ones; preemption.

There are no prefill or decode phases. Every step, each scheduled sequence moves its
num_computed_tokens toward num_tokens by as many tokens as the budget allows, so a long prompt
spans several steps (chunked prefill) and mixes with the decodes of other sequences.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

from ponder.config import SchedulerConfig
from ponder.engine.kv.manager import KVCacheManager
from ponder.engine.request import Sequence, SequenceStatus


@dataclass
class ScheduledBatch:
    seqs: list[Sequence] = field(default_factory=list)
    num_new_tokens: list[int] = field(default_factory=list)
    block_copies: list[tuple[int, int]] = field(default_factory=list)  # (src, dst) before forward
    # Disaggregated serving under tensor parallelism (engine/kv_transfer/tp.py): KV loaded for
    # the other ranks to write before this forward, and the slots of prompts to gather after it.
    kv_loads: list[Any] = field(default_factory=list)
    kv_save_slots: list[Any] = field(default_factory=list)

    @property
    def num_tokens(self) -> int:
        return sum(self.num_new_tokens)

    @property
    def is_empty(self) -> bool:
        return not self.seqs


class Scheduler:
    def __init__(self, config: SchedulerConfig, kv: KVCacheManager):
        self.config = config
        self.kv = kv
        self.waiting: list[Sequence] = []  # sorted by _key: the head is admitted first
        self.running: list[Sequence] = []  # sorted by _key: the tail is preempted first
        self.num_preemptions = 0

    def _key(self, seq: Sequence) -> tuple[int, bool, float]:
        """Lower first: priority (under that policy), then `ahead` requests, then arrival."""
        request = seq.request
        priority = request.priority if self.config.policy == "priority" else 0
        return (priority, not request.ahead, request.metrics.arrival_time)

    @property
    def has_unfinished(self) -> bool:
        return bool(self.waiting or self.running)

    def spare_seats(self) -> int:
        """Sequences that could still start at once: max_num_seqs less those running and those
        waiting (a request waiting to fork counts all its samples)."""
        taken = len(self.running) + sum(self._seats_needed(seq) for seq in self.waiting)
        return max(0, self.config.max_num_seqs - taken)

    def add_waiting(self, seq: Sequence) -> None:
        seq.status = SequenceStatus.WAITING
        bisect.insort_right(self.waiting, seq, key=self._key)

    def add_running(self, seq: Sequence) -> None:
        """A sequence forked from a running one starts running with its parent's blocks."""
        seq.status = SequenceStatus.RUNNING
        bisect.insort_right(self.running, seq, key=self._key)

    def remove(self, seq: Sequence) -> None:
        """Drop a finished or aborted sequence and free its blocks."""
        for queue in (self.waiting, self.running):
            if seq in queue:
                queue.remove(seq)
        self.kv.free(seq)

    def schedule(self) -> ScheduledBatch:
        batch = ScheduledBatch()
        budget = self.config.max_num_batched_tokens
        preemptions_before = self.num_preemptions
        index = 0
        while index < len(self.running) and budget > 0:
            seq = self.running[index]
            if seq.num_pending_tokens and seq.wait_for_pending:
                index += 1
                continue
            num_new = min(seq.num_tokens - seq.num_computed_tokens, budget)
            if self._make_room(seq, num_new):
                batch.seqs.append(seq)
                batch.num_new_tokens.append(num_new)
                budget -= num_new
                index += 1
            # else: seq itself was preempted, and index already points at the next one
        # Admitting new work right after a preemption would only thrash the pool.
        if self.num_preemptions == preemptions_before:
            budget = self._admit_waiting(batch, budget)
        batch.block_copies = self.kv.pending_copies
        self.kv.pending_copies = []
        return batch

    def _make_room(self, seq: Sequence, num_new: int) -> bool:
        """Allocate slots for seq, preempting from the tail of running (lowest priority, newest).

        The tail is never already scheduled this step, since running is walked from the head.
        Returns False when seq itself had to be preempted."""
        while not self.kv.allocate_slots(seq, num_new):
            victim = self.running[-1]
            self._preempt(victim)
            if victim is seq:
                return False
        return True

    def _preempt(self, seq: Sequence) -> None:
        # Recompute later: the tokens stay, the KV goes; prefix caching may bring much of it back.
        self.running.remove(seq)
        self.kv.free(seq)
        self.num_preemptions += 1
        self.add_waiting(seq)

    def _admit_waiting(self, batch: ScheduledBatch, budget: int) -> int:
        while self.waiting and budget > 0:
            seq = self.waiting[0]
            if seq.num_pending_tokens:
                break  # preempted with a token still on the device: recompute once it is here
            if len(self.running) + self._seats_needed(seq) > self.config.max_num_seqs:
                break
            seq.num_computed_tokens = self._reuse_kv(seq)
            num_new = min(seq.num_tokens - seq.num_computed_tokens, budget)
            if not self.kv.allocate_slots(seq, num_new):
                self.kv.free(seq)  # don't sit on cached blocks while waiting
                break
            self.kv.record_prefix_lookup(seq.num_tokens, seq.num_computed_tokens)
            self.waiting.pop(0)
            self.add_running(seq)
            batch.seqs.append(seq)
            batch.num_new_tokens.append(num_new)
            budget -= num_new
        return budget

    def _reuse_kv(self, seq: Sequence) -> int:
        """KV the sequence need not compute: its prefix source's blocks while that sample is
        running (a partial last block too), else whatever the prefix cache holds."""
        source = seq.request.prefix_source
        if source is not None and source.status is SequenceStatus.RUNNING and source.block_table:
            shared = self.kv.share_prefix(source, seq)
            if shared:
                return shared
        return self.kv.match_prefix(seq)

    @staticmethod
    def _seats_needed(seq: Sequence) -> int:
        # A request with n > 1 forks into n sequences once its prompt is prefilled.
        request = seq.request
        return request.params.n if len(request.sequences) < request.params.n else 1
