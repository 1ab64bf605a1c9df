"""What the engine hands back: RequestOutput with one CompletionOutput per sample (vLLM-shaped)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Logprob:
    logprob: float
    rank: int  # 1 = most likely token
    decoded_token: str | None = None


# One position's logprobs: the chosen token plus the top-k alternatives, by token id.
PositionLogprobs = dict[int, Logprob]


@dataclass
class CompletionOutput:
    """One sample. `text` is everything it generated, think markers included; `reasoning` and
    `content` split it at the thought (split by token ids, seam whitespace dropped). In a DELTA
    output the texts and lists are what is new; the token counts are always totals."""

    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None = None
    logprobs: list[PositionLogprobs] | None = None  # {} at tokens the engine forced
    # Per-token confidence (-mean of the top-k logprobs), when SamplingParams.confidence_top_k > 0.
    confidences: list[float | None] | None = None
    reasoning: str = ""  # the thought (empty for a model that does not think)
    content: str = ""  # the answer
    num_reasoning_tokens: int = 0  # generated tokens of the thought, its markers included
    num_content_tokens: int = 0  # generated tokens of the answer
    finish_reason: str | None = None  # "stop" | "length" | "abort" | "error"
    stop_reason: int | str | None = None  # the stop string or token id that ended it

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None


@dataclass
class RequestMetrics:
    arrival_time: float
    first_scheduled_time: float | None = None
    first_token_time: float | None = None
    finished_time: float | None = None
    num_cached_prompt_tokens: int = 0


@dataclass
class RequestOutput:
    request_id: str
    prompt: str | None
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput]
    finished: bool
    prompt_logprobs: list[PositionLogprobs | None] | None = None
    metrics: RequestMetrics | None = None
    num_cached_tokens: int = 0
    error: str | None = None  # why this request alone failed (finish_reason "error"); see Request
