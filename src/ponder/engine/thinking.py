"""Thought tracking: which generated tokens are reasoning, and closing a thought at its budget.

A reasoning model writes `<think> … </think>` and then its answer. The engine follows each
sequence's state so that it can count reasoning tokens, keep stop strings out of the thought,
and, when a thinking budget is spent, append the tokens of "\\n</think>\\n\\n" itself so the
model goes on to answer instead of being cut off mid-thought.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ponder.engine.tokenizer import Tokenizer

THINK_START = "<think>"
THINK_END = "</think>"
CLOSE_TEXT = "\n</think>\n\n"
# A model may name its own text for a thought cut short by a budget (tokenizer_config.json key
# "thinking_budget_close", Tokenizer.budget_close_text): the built-in model answers an answer
# probe (CLOSE_TEXT + "\\boxed{") with an empty box until its thought states a result, so a budget
# must close differently for it to answer anyway.


@dataclass(frozen=True)
class ThinkMarkers:
    start_id: int
    end_id: int
    close_ids: tuple[int, ...]  # how a thought is closed from outside (answer probes)
    budget_close_ids: tuple[int, ...] = ()  # forced when a budget is reached; () = close_ids

    @property
    def forced_close_ids(self) -> tuple[int, ...]:
        return self.budget_close_ids or self.close_ids

    @classmethod
    def from_tokenizer(cls, tokenizer: Tokenizer) -> ThinkMarkers | None:
        """None for a model without single-token think markers (not a reasoning model)."""
        start_id, end_id = tokenizer.token_to_id(THINK_START), tokenizer.token_to_id(THINK_END)
        if start_id is None or end_id is None:
            return None
        close_ids = tuple(tokenizer.encode(CLOSE_TEXT, add_special_tokens=False))
        if end_id not in close_ids:
            return None
        budget_close_ids: tuple[int, ...] = ()
        budget_close_text = getattr(tokenizer, "budget_close_text", None)  # (duck-typed tokenizers)
        if budget_close_text:
            budget_close_ids = tuple(tokenizer.encode(budget_close_text, add_special_tokens=False))
            if end_id not in budget_close_ids:
                budget_close_ids = ()  # a close text that does not close the thought: ignored
        return cls(start_id, end_id, close_ids, budget_close_ids)


@dataclass
class ThoughtState:
    in_thought: bool = False
    closed: bool = False
    num_reasoning_tokens: int = 0

    @classmethod
    def after_prompt(cls, prompt_token_ids: Sequence[int], markers: ThinkMarkers) -> ThoughtState:
        """A chat template may open the thought itself (the prompt ends inside `<think>`)."""
        for token_id in reversed(prompt_token_ids):
            if token_id == markers.end_id:
                return cls()
            if token_id == markers.start_id:
                return cls(in_thought=True)
        return cls()

    def observe(self, token_id: int, markers: ThinkMarkers, budget: int | None) -> tuple[int, ...]:
        """Account for one sampled token; returns the tokens to force after it (or none)."""
        if self.closed:
            return ()
        if token_id == markers.start_id and not self.in_thought:
            self.in_thought = True
        if not self.in_thought:
            return ()
        self.num_reasoning_tokens += 1
        if token_id == markers.end_id:
            self.in_thought, self.closed = False, True
            return ()
        if budget is not None and self.num_reasoning_tokens >= budget:
            self.in_thought, self.closed = False, True
            return markers.forced_close_ids
        return ()
