"""SamplingParams: how to pick tokens and when to stop, validated up front (vLLM-compatible names)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from ponder.engine.structured.params import StructuredOutputParams
from ponder.errors import InvalidRequestError


class RequestOutputKind(enum.Enum):
    CUMULATIVE = "cumulative"  # every output carries everything generated so far
    DELTA = "delta"  # every output carries only what is new since the last one (streaming)
    FINAL_ONLY = "final_only"  # one output, when the request finishes


@dataclass
class SamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 or -1: off
    min_p: float = 0.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    seed: int | None = None
    stop: str | list[str] | None = None
    stop_token_ids: list[int] | None = None
    include_stop_str_in_output: bool = False
    ignore_eos: bool = False
    max_tokens: int | None = 16  # None: up to the model's context length
    min_tokens: int = 0
    logprobs: int | None = None  # top-k logprobs per generated token (the chosen one is always there)
    prompt_logprobs: int | None = None
    # Per-token confidence = -mean(top-k logprobs); reasoning strategies read it. 0: not computed.
    confidence_top_k: int = 0
    # Reasoning models: at most this many tokens inside <think>…</think>; the engine then closes
    # the thought itself so the answer still comes. None: no budget.
    thinking_budget: int | None = None
    # The answer (never the thought) must match this JSON schema / regex / choice / grammar.
    structured_outputs: StructuredOutputParams | None = None
    skip_special_tokens: bool = True
    output_kind: RequestOutputKind = RequestOutputKind.CUMULATIVE
    # Disaggregated prefill/decode: the router's hand-off instructions (engine/kv_transfer/spec.py
    # parses and checks them). None: an ordinary request.
    kv_transfer: dict[str, Any] | None = None
    stop_list: list[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.stop_list = _as_stop_list(self.stop)
        self.stop_token_ids = _as_int_list(self.stop_token_ids, "stop_token_ids")
        self.top_k = -1 if self.top_k in (0, -1) else self.top_k
        self._validate()

    @property
    def greedy(self) -> bool:
        return self.temperature < 1e-5

    @property
    def needs_penalties(self) -> bool:
        return self.presence_penalty != 0.0 or self.frequency_penalty != 0.0 or self.repetition_penalty != 1.0

    def _validate(self) -> None:
        _check(_is_int(self.n) and self.n >= 1, "n", f"n must be an integer >= 1, got {self.n!r}")
        _check(
            _is_number(self.temperature) and self.temperature >= 0,
            "temperature",
            f"temperature must be >= 0, got {self.temperature!r}",
        )
        _check(
            _is_number(self.top_p) and 0 < self.top_p <= 1,
            "top_p",
            f"top_p must be in (0, 1], got {self.top_p!r}",
        )
        _check(
            _is_int(self.top_k) and (self.top_k == -1 or self.top_k >= 1),
            "top_k",
            f"top_k must be -1, 0 (off) or >= 1, got {self.top_k!r}",
        )
        _check(
            _is_number(self.min_p) and 0 <= self.min_p <= 1,
            "min_p",
            f"min_p must be in [0, 1], got {self.min_p!r}",
        )
        for name in ("presence_penalty", "frequency_penalty"):
            value = getattr(self, name)
            _check(
                _is_number(value) and -2 <= value <= 2,
                name,
                f"{name} must be in [-2, 2], got {value!r}",
            )
        _check(
            _is_number(self.repetition_penalty) and self.repetition_penalty > 0,
            "repetition_penalty",
            f"repetition_penalty must be > 0, got {self.repetition_penalty!r}",
        )
        _check(
            self.seed is None or _is_int(self.seed),
            "seed",
            f"seed must be an integer, got {self.seed!r}",
        )
        _check(
            self.max_tokens is None or (_is_int(self.max_tokens) and self.max_tokens >= 1),
            "max_tokens",
            f"max_tokens must be an integer >= 1, got {self.max_tokens!r}",
        )
        _check(
            _is_int(self.min_tokens) and self.min_tokens >= 0,
            "min_tokens",
            f"min_tokens must be an integer >= 0, got {self.min_tokens!r}",
        )
        if self.max_tokens is not None and _is_int(self.min_tokens):
            _check(
                self.min_tokens <= self.max_tokens,
                "min_tokens",
                f"min_tokens ({self.min_tokens}) must not exceed max_tokens ({self.max_tokens})",
            )
        for name in ("logprobs", "prompt_logprobs"):
            value = getattr(self, name)
            _check(
                value is None or (_is_int(value) and 0 <= value <= 20),
                name,
                f"{name} must be an integer in [0, 20], got {value!r}",
            )
        _check(
            _is_int(self.confidence_top_k) and 0 <= self.confidence_top_k <= 100,
            "confidence_top_k",
            f"confidence_top_k must be an integer in [0, 100], got {self.confidence_top_k!r}",
        )
        _check(
            self.thinking_budget is None or (_is_int(self.thinking_budget) and self.thinking_budget >= 1),
            "thinking_budget",
            f"thinking_budget must be an integer >= 1, got {self.thinking_budget!r}",
        )
        structured = self.structured_outputs
        _check(
            structured is None or isinstance(structured, StructuredOutputParams),
            "structured_outputs",
            f"structured_outputs must be a StructuredOutputParams, got {type(structured).__name__}",
        )
        if structured is not None:
            # The grammar's end allows only a stop token; ignoring eos would loop to max_tokens.
            _check(
                not self.ignore_eos,
                structured.param,
                f"{structured.param} cannot be combined with ignore_eos",
            )
        _check(
            isinstance(self.output_kind, RequestOutputKind),
            "output_kind",
            f"output_kind must be a RequestOutputKind, got {self.output_kind!r}",
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def _check(ok: bool, param: str, message: str) -> None:
    if not ok:
        raise InvalidRequestError(message, param=param)


def _as_stop_list(stop: object) -> list[str]:
    if stop is None:
        return []
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list | tuple) or not all(isinstance(s, str) for s in stop):
        raise InvalidRequestError(
            f"stop must be a string or a list of strings, got {type(stop).__name__}", param="stop"
        )
    if any(s == "" for s in stop):
        raise InvalidRequestError("stop strings must not be empty", param="stop")
    return list(stop)


def _as_int_list(values: object, param: str) -> list[int]:
    if values is None:
        return []
    if not isinstance(values, list | tuple) or not all(_is_int(v) and v >= 0 for v in values):
        raise InvalidRequestError(f"{param} must be a list of token ids (integers >= 0)", param=param)
    return list(values)
