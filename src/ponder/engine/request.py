"""Request (what a user asked for) and Sequence (one sample of it, the unit the scheduler moves)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ponder.engine.outputs import PositionLogprobs, RequestMetrics
from ponder.engine.sampling_params import SamplingParams

if TYPE_CHECKING:
    import torch

    from ponder.engine.output_text import OutputText
    from ponder.engine.structured.state import StructuredState
    from ponder.engine.thinking import ThoughtState


class SequenceStatus(enum.Enum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"


@dataclass
class SentOffsets:
    """How much of a sequence's output earlier DELTA outputs already carried."""

    tokens: int = 0
    raw_chars: int = 0
    reasoning_chars: int = 0
    content_chars: int = 0


@dataclass(eq=False)
class Sequence:
    """One token stream. The engine's single rule: each step moves num_computed_tokens toward
    num_tokens; when they meet, a new token is sampled. Prefill, chunked prefill, prefix hits,
    decode and recompute after preemption are all this rule.

    With asynchronous scheduling a sampled token may still be on the device when the next step
    is scheduled: it counts in num_tokens (the next step computes it) but is not in token_ids
    until the host receives it (num_pending_tokens)."""

    seq_id: int
    request: Request
    index: int  # position among the request's n outputs
    token_ids: list[int]
    num_prompt_tokens: int
    generator: torch.Generator | None
    text: OutputText
    thought: ThoughtState | None = None  # None: the model has no think markers
    status: SequenceStatus = SequenceStatus.WAITING
    num_computed_tokens: int = 0
    block_table: list[int] = field(default_factory=list)
    block_hashes: list[int] = field(default_factory=list)  # hashes of full blocks, a chain
    num_published_blocks: int = 0  # leading blocks already in the prefix cache index
    cumulative_logprob: float = 0.0
    logprobs: list[PositionLogprobs] | None = None
    confidences: list[float | None] | None = None  # None at tokens the engine forced
    finish_reason: str | None = None
    stop_reason: int | str | None = None
    num_pending_tokens: int = 0
    # Set when a pending token may end the sequence or change its next input (a length limit,
    # a thinking budget): it is not scheduled again until that token has reached the host.
    wait_for_pending: bool = False
    sent: SentOffsets = field(default_factory=SentOffsets)  # what DELTA outputs carried
    # Draft tokens the target verifies this step (engine/spec/): fed after the last token, not
    # part of token_ids; set just before the forward and cleared right after it.
    spec_token_ids: list[int] = field(default_factory=list)
    structured: StructuredState | None = None  # set when the request constrains its answer

    @property
    def params(self) -> SamplingParams:
        return self.request.params

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids) + self.num_pending_tokens

    @property
    def num_output_tokens(self) -> int:
        return len(self.token_ids) - self.num_prompt_tokens

    @property
    def output_token_ids(self) -> list[int]:
        return self.token_ids[self.num_prompt_tokens :]

    @property
    def prompt_token_ids(self) -> list[int]:
        return self.token_ids[: self.num_prompt_tokens]

    @property
    def num_reasoning_tokens(self) -> int:
        return self.thought.num_reasoning_tokens if self.thought is not None else 0

    @property
    def is_finished(self) -> bool:
        return self.status is SequenceStatus.FINISHED


@dataclass(eq=False)
class Request:
    request_id: str
    prompt: str | None
    prompt_token_ids: list[int]
    params: SamplingParams
    metrics: RequestMetrics  # its arrival orders the scheduler's queues (first come, first served)
    priority: int = 0
    # Admitted before every waiting request of its priority (an answer probe of a live thought:
    # a few tokens that may end the thought are worth more than starting anything new).
    ahead: bool = False
    sequences: list[Sequence] = field(default_factory=list)
    prompt_logprobs: list[PositionLogprobs | None] | None = None
    aborted: bool = False
    # Set when handling this request alone failed (its sampling or detokenizing raised): it ends
    # at once with finish_reason "error"; the engine keeps serving every other request.
    error: str | None = None
    # (request id, sample index) of a live sample whose tokens this prompt starts with (a probe
    # of a running thought); the engine resolves it to `prefix_source` when the request is added
    prefix_of: tuple[str, int] | None = None
    prefix_source: Sequence | None = None
    # The compiled grammar of params.structured_outputs (xgrammar's CompiledGrammar); each
    # sample runs its own matcher over it.
    grammar: object | None = None

    @property
    def finished(self) -> bool:
        if self.aborted or self.error is not None:
            return True
        return len(self.sequences) == self.params.n and all(s.is_finished for s in self.sequences)
