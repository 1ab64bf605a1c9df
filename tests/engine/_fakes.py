"""Fake requests and a fake model step for testing the scheduler and KV manager without a model."""

from __future__ import annotations

import itertools

from ponder.engine.detokenizer import IncrementalDetokenizer
from ponder.engine.output_text import OutputText
from ponder.engine.outputs import RequestMetrics
from ponder.engine.request import Request, Sequence, SequenceStatus
from ponder.engine.sampling_params import SamplingParams

_ids = itertools.count()


class IdTokenizer:
    """Decodes token id i as "<i>": all the text a hand-built Sequence needs."""

    def decode(self, token_ids, skip_special_tokens: bool = True) -> str:
        return "".join(f"<{i}>" for i in token_ids)


def make_seq(
    prompt: list[int],
    *,
    n: int = 1,
    max_tokens: int = 4,
    priority: int = 0,
    arrival: float | None = None,
) -> Sequence:
    arrival = float(next(_ids)) if arrival is None else arrival
    request = Request(
        request_id=f"r{arrival}",
        prompt=None,
        prompt_token_ids=list(prompt),
        params=SamplingParams(n=n, max_tokens=max_tokens),
        metrics=RequestMetrics(arrival_time=arrival),
        priority=priority,
    )
    seq = Sequence(
        seq_id=next(_ids),
        request=request,
        index=0,
        token_ids=list(prompt),
        num_prompt_tokens=len(prompt),
        generator=None,
        text=OutputText(IncrementalDetokenizer(IdTokenizer(), prompt), markers=None, in_thought=False),
    )
    request.sequences.append(seq)
    return seq


def advance(scheduler, batch, next_token: int = 7) -> list[Sequence]:
    """Apply a scheduled batch as the engine would; returns the sequences that finished."""
    finished = []
    for seq, num_new in zip(batch.seqs, batch.num_new_tokens):
        seq.num_computed_tokens += num_new
        scheduler.kv.cache_computed_blocks(seq)
        if seq.num_computed_tokens == seq.num_tokens:
            seq.token_ids.append(next_token)
            if seq.num_output_tokens >= seq.params.max_tokens:
                seq.status = SequenceStatus.FINISHED
                seq.finish_reason = "length"
                scheduler.remove(seq)
                finished.append(seq)
    return finished


def referenced_blocks(seqs) -> dict[int, int]:
    counts: dict[int, int] = {}
    for seq in seqs:
        for block in seq.block_table:
            counts[block] = counts.get(block, 0) + 1
    return counts
