"""InflightStep: a launched step whose work is queued on the device and whose tokens the host
has not seen yet (asynchronous scheduling keeps one of these while it prepares the next step)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ponder.engine.model_runner import PendingInputs
from ponder.engine.request import Sequence
from ponder.engine.sampler import DeviceSamples
from ponder.engine.scheduler import ScheduledBatch
from ponder.engine.transfers import HostCopy

if TYPE_CHECKING:
    from ponder.engine.spec.speculator import SpecStep


@dataclass
class PromptLogprobsCopy:
    """One prompt chunk's logprobs (position_logprob_tensors), on their way to the host."""

    seq: Sequence
    tensors: HostCopy
    top_k: int


@dataclass
class InflightStep:
    batch: ScheduledBatch
    # Row i of samples belongs to sampling_seqs[i] and becomes its token_ids[positions[i]].
    sampling_seqs: list[Sequence]
    positions: list[int]
    samples: DeviceSamples | None  # None: no sequence sampled (prefill chunks only)
    prompt_logprobs: list[PromptLogprobsCopy] = field(default_factory=list)
    # A sampled row has penalties, which count its tokens on the host: the next step must wait
    # for this one's tokens before it can be scheduled.
    needs_tokens_on_host: bool = False
    spec: SpecStep | None = None  # the drafts this step verifies (speculative decoding)

    def pending_inputs(self, batch: ScheduledBatch) -> PendingInputs | None:
        """Where the next batch's inputs that this step sampled come from on the device."""
        if self.samples is None:
            return None
        batch_indices = [i for i, seq in enumerate(batch.seqs) if seq.num_pending_tokens]
        if not batch_indices:
            return None
        row_of = {seq: row for row, seq in enumerate(self.sampling_seqs)}
        source_rows = [row_of[batch.seqs[i]] for i in batch_indices]
        return PendingInputs(
            self.samples.token_ids,
            np.asarray(batch_indices, dtype=np.int64),
            np.asarray(source_rows, dtype=np.int64),
        )
