"""LogRecord: one served request as the flywheel keeps it (a row of the request log)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

CONTENT_MODES: tuple[str, ...] = ("full", "none")


@dataclass
class LogRecord:
    response_id: str
    created: float  # unix time the request arrived
    model: str
    model_version: str
    workload_id: str
    endpoint: str  # "chat" or "completion"
    prompt: str | None  # the user's question (chat) or prompt text; None with --log-content none
    reasoning: str | None
    answer: str | None  # the visible reply
    final_answer: str | None  # the extracted answer (a strategy's vote, else \boxed{} of the reply)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    latency_s: float = 0.0
    strategy: str | None = None
    agreement: float | None = None  # the winning answer's share of the votes
    confidence: float | None = None  # mean confidence of the branches that gave the answer
    finish_reason: str | None = None
    status: str = "ok"  # "ok" or "error"
    feedback: float | None = None  # set later through POST /v1/feedback

    def without_content(self) -> LogRecord:
        """The metrics only: what `--log-content none` keeps (no text of the user or model)."""
        return dataclasses.replace(self, prompt=None, reasoning=None, answer=None, final_answer=None)


COLUMNS: tuple[str, ...] = tuple(field.name for field in dataclasses.fields(LogRecord))
