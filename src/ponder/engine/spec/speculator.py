"""Speculator: what the engine calls each step to propose drafts, sample their verification
rows and keep the verified tokens.

A step goes: `propose` picks decoding sequences, asks the proposer for drafts and allocates
KV slots for them (the drafts ride along as extra query tokens, like a small prefill chunk);
the target runs its one batched forward; `SpecStep.sample` samples the position after every
draft with the ordinary Sampler; once the ordinary row's token is appended, `SpecStep.accept`
appends each further sample while the token before it matched its draft, then rolls back the
KV of the rejected drafts (num_computed_tokens and the blocks allocated for them). Blocks are
only published to the prefix cache for tokens in token_ids, which never holds a draft, so a
block with a rejected token's KV is never registered."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ponder.config import SpeculativeConfig
from ponder.engine.kv.manager import KVCacheManager, cdiv
from ponder.engine.request import Sequence, SequenceStatus
from ponder.engine.sampler import DeviceSamples, Sampler, SamplerOutput, SamplingRow
from ponder.engine.scheduler import ScheduledBatch
from ponder.engine.spec.controller import AcceptanceController, ProbeSchedule
from ponder.engine.spec.cost import StepCostModel
from ponder.engine.spec.proposer import Proposer

logger = logging.getLogger("ponder.engine")


@dataclass
class SpeculationStats:
    num_draft_tokens: int = 0  # drafts proposed and verified
    num_accepted_tokens: int = 0  # of which accepted
    num_verifications: int = 0  # sequence-steps that verified drafts
    num_emitted_tokens: int = 0  # tokens those verifications appended (accepted + 1 each)

    @property
    def acceptance_rate(self) -> float:
        return self.num_accepted_tokens / self.num_draft_tokens if self.num_draft_tokens else 0.0

    @property
    def mean_accepted_length(self) -> float:
        """Tokens per verifying step of a sequence (1 would be plain decoding)."""
        return self.num_emitted_tokens / self.num_verifications if self.num_verifications else 0.0


def can_speculate(seq: Sequence) -> bool:
    """The hook that keeps a sequence out of speculation. A decode only: no prompt left to
    prefill (chunked prefill goes on as usual) and at least one token sampled; no structured-output
    constraint: its grammar mask advances one token at a time (engine/structured/). (A sequence
    whose last token is still on the device waits a step: see Speculator.wants_host_tokens.)"""
    if seq.num_output_tokens < 1 or seq.num_computed_tokens + 1 != seq.num_tokens:
        return False
    return seq.params.structured_outputs is None


class Speculator:
    def __init__(
        self,
        config: SpeculativeConfig,
        proposer: Proposer,
        kv: KVCacheManager,
        max_model_len: int,
        max_num_batched_tokens: int,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.config = config
        self.proposer = proposer
        self.kv = kv
        self.max_model_len = max_model_len
        self.max_num_batched_tokens = max_num_batched_tokens
        self.controller = AcceptanceController(config.num_speculative_tokens)
        self.cost = StepCostModel(config.token_cost + proposer.cost_per_token, clock)
        self.probes = ProbeSchedule()
        self.stats = SpeculationStats()
        self._tracked: dict[int, Sequence] = {}  # sequences with proposer or controller state
        # Whether the step just proposed for may be followed by one that drafts: then the engine
        # finishes it before scheduling the next (asynchronous scheduling), so drafts see its token.
        self.wants_host_tokens = False

    def propose(self, batch: ScheduledBatch) -> SpecStep | None:
        """Attach drafts to the batch's decoding sequences; None when none gets any."""
        self._forget_gone()
        num_seqs = len(batch.seqs)
        pure_decode = all(num_new == 1 for num_new in batch.num_new_tokens)
        # The step's time starts before proposing: a draft model's run is part of its cost.
        self.cost.step_started(num_seqs, pure_decode)
        if num_seqs > self.config.disable_batch_size:
            # None drafts until the batch shrinks (then one step runs plain and it resumes).
            self.wants_host_tokens = False
            return None
        if pure_decode and self.config.adaptive and self.cost.wants_plain_step(num_seqs):
            self.wants_host_tokens = True  # a step kept plain to measure may be followed by drafts
            return None
        self.wants_host_tokens = False  # _propose says otherwise when a sequence would draft
        step = self._propose(batch)
        self.cost.set_drafts(sum(len(drafts) for drafts in step.drafts) if step else 0)
        return step

    def _propose(self, batch: ScheduledBatch) -> SpecStep | None:
        cost = self.cost.cost_per_token(len(batch.seqs))
        probe = self.probes.is_probe_step(hopeless=self.controller.best_k(1.0, cost) == 0)
        room = self.max_num_batched_tokens - batch.num_tokens
        wanted: list[tuple[int, Sequence, int]] = []
        waiting = False  # a sequence would draft if its last token were on the host
        for index, (seq, num_new) in enumerate(zip(batch.seqs, batch.num_new_tokens)):
            if num_new != 1 or room <= 0 or not can_speculate(seq):
                continue
            self._tracked[seq.seq_id] = seq
            if not self.config.adaptive:
                best = self.config.num_speculative_tokens
            else:
                best = self.controller.num_tokens(seq.seq_id, cost, probe=False)
            if best:
                self.probes.speculating()
            k = min(max(best, 1) if probe else best, self._tokens_left(seq) - 1, room)
            if k <= 0:
                continue
            self.wants_host_tokens = True
            if seq.num_pending_tokens:
                waiting = True
                continue
            wanted.append((index, seq, k))
            room -= k
        if waiting and probe and not wanted:
            self.probes.defer()  # it probes in the next step, with its tokens on the host
        if not wanted:
            return None
        drafts = self.proposer.propose([(seq, k) for _, seq, k in wanted])
        step = SpecStep(self)
        for (index, seq, k), tokens in zip(wanted, drafts, strict=True):
            tokens = tokens[:k]
            # Never preempt for a draft: without room the sequence just decodes one token.
            if tokens and self.kv.allocate_slots(seq, 1 + len(tokens)):
                seq.spec_token_ids = list(tokens)
                batch.num_new_tokens[index] += len(tokens)
                step.seqs.append(seq)
                step.drafts.append(list(tokens))
        assert not self.kv.pending_copies, "the scheduler's allocation already copied on write"
        return step if step.seqs else None

    def _tokens_left(self, seq: Sequence) -> int:
        """Tokens seq may still append before its length limit (max_tokens, max_model_len)."""
        limit = self.max_model_len
        max_tokens = seq.params.max_tokens
        if max_tokens is not None:
            limit = min(limit, seq.num_prompt_tokens + max_tokens)
        return limit - seq.num_tokens

    def _forget_gone(self) -> None:
        # A preempted sequence recomputes from scratch, so its draft state goes too.
        for seq_id, seq in list(self._tracked.items()):
            if seq.status is not SequenceStatus.RUNNING:
                self.proposer.forget(seq_id)
                self.controller.forget(seq_id)
                del self._tracked[seq_id]

    def roll_back(self, seq: Sequence, num_verified: int) -> None:
        """Keep the KV of the first num_verified fed tokens after seq's last real one; free the
        blocks that only held rejected drafts."""
        seq.num_computed_tokens = min(seq.num_computed_tokens, num_verified, len(seq.token_ids) - 1)
        keep = cdiv(seq.num_computed_tokens + 1, self.kv.block_size)
        for block_id in seq.block_table[keep:]:
            self.kv.pool.release(block_id)
        del seq.block_table[keep:]


@dataclass
class SpecStep:
    """The drafts of one step, in batch order (the order of ModelStepOutput.spec_logits)."""

    speculator: Speculator
    seqs: list[Sequence] = field(default_factory=list)
    drafts: list[list[int]] = field(default_factory=list)
    samples: DeviceSamples | None = None
    _first_row: dict[Sequence, int] = field(default_factory=dict)
    _host: SamplerOutput | None = None

    def sample(
        self,
        sampler: Sampler,
        logits: torch.Tensor | None,
        sampling_row: Callable[[Sequence, list[int]], SamplingRow],
    ) -> None:
        """Sample the position after each draft. Row j of a sequence sees its tokens plus its
        first j + 1 drafts (penalties and min_tokens count them). A failure here only costs the
        drafts: the step then appends the ordinary row's token alone."""
        rows: list[SamplingRow] = []
        for seq, drafts in zip(self.seqs, self.drafts):
            seq.spec_token_ids = []
            self._first_row[seq] = len(rows)
            context = list(seq.token_ids)
            for draft in drafts:
                context.append(draft)
                rows.append(sampling_row(seq, list(context)))
        if logits is None or logits.shape[0] != len(rows):
            return
        try:
            self.samples = sampler.sample(logits, rows)
        except Exception:
            logger.exception("sampling the speculative rows failed; their drafts are dropped")

    def accept(self, seq: Sequence, base: int, append: Callable[[SamplerOutput, int], None]) -> None:
        """seq's ordinary token was appended at position `base`; append the verified tokens
        after it (each is the target's own sample there, taken while the one before matched its
        draft), then roll back the rest. `append(samples, row)` appends one sample row."""
        row = self._first_row.get(seq)
        if row is None:
            return
        drafts = self.drafts[self.seqs.index(seq)]
        speculator = self.speculator
        accepted = 0
        host = self._host_samples()
        while (
            host is not None
            and accepted < len(drafts)
            and not seq.is_finished
            and len(seq.token_ids) == base + accepted + 1  # no token forced in between
            and seq.token_ids[base + accepted] == drafts[accepted]
        ):
            append(host, row + accepted)
            accepted += 1
        stats = speculator.stats
        stats.num_draft_tokens += len(drafts)
        stats.num_accepted_tokens += accepted
        stats.num_verifications += 1
        stats.num_emitted_tokens += len(seq.token_ids) - base
        speculator.controller.observe(seq.seq_id, len(drafts), accepted)
        if not seq.is_finished:
            # Fed: the token before `base`, then the drafts; KV is right while they were real.
            speculator.roll_back(seq, base + _matching(seq.token_ids, base, drafts))

    def _host_samples(self) -> SamplerOutput | None:
        if self._host is None and self.samples is not None:
            self._host = self.samples.to_host()
        return self._host


def _matching(token_ids: list[int], base: int, drafts: list[int]) -> int:
    count = 0
    while count < len(drafts) and base + count < len(token_ids) and token_ids[base + count] == drafts[count]:
        count += 1
    return count
