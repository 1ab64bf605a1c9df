"""What a run produced: one record per request (timings in seconds, tokens, errors) and the run."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RequestRecord:
    index: int  # position in the run's arrival order
    prompt_len: int
    max_tokens: int
    start_s: float  # when it was sent, seconds after the run started
    success: bool
    error_kind: str | None = None  # "http_500", "timeout", "malformed_chunk", ...
    error: str | None = None
    ttft_s: float | None = None
    e2e_s: float | None = None
    time_to_answer_s: float | None = None
    itl_s: list[float] = field(default_factory=list)
    output_tokens: int = 0
    reasoning_tokens: int = 0
    answer_tokens: int = 0
    token_count_source: str | None = None  # "usage" | "tokenizer" | "chunks"
    correct: bool | None = None  # None: no answer check for this prompt
    check_error: str | None = None

    @property
    def tpot_s(self) -> float | None:
        """(E2E - TTFT) / (output tokens - 1), as vLLM; undefined for a single token."""
        if not self.success or self.output_tokens <= 1:
            return None
        assert self.e2e_s is not None and self.ttft_s is not None
        return (self.e2e_s - self.ttft_s) / (self.output_tokens - 1)

    @property
    def end_s(self) -> float:
        return self.start_s + (self.e2e_s or 0.0)

    def to_json(self) -> dict:
        """The per-request record of the result file (times in milliseconds)."""
        return {
            "index": self.index,
            "success": self.success,
            "error_kind": self.error_kind,
            "error": self.error,
            "start_ms": _ms(self.start_s),
            "prompt_tokens": self.prompt_len,
            "max_tokens": self.max_tokens,
            "output_tokens": self.output_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "answer_tokens": self.answer_tokens,
            "token_count_source": self.token_count_source,
            "ttft_ms": _ms(self.ttft_s),
            "tpot_ms": _ms(self.tpot_s),
            "e2e_ms": _ms(self.e2e_s),
            "time_to_answer_ms": _ms(self.time_to_answer_s),
            "itl_ms": [_ms(v) for v in self.itl_s],
            "correct": self.correct,
            "check_error": self.check_error,
        }


@dataclass
class RunResult:
    """All requests of one run at one request rate."""

    request_rate: float
    duration_s: float  # first send to last response, as vLLM's benchmark duration
    records: list[RequestRecord]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)
