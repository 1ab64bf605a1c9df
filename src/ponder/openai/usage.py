"""Token usage of one API request, summed over its prompts and samples as outputs arrive."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ponder.engine.outputs import RequestOutput
    from ponder.reasoning.strategies import TokenUsage


@dataclass
class UsageCounter:
    prompt_tokens_by_prompt: dict[int, int] = field(default_factory=dict)
    cached_tokens_by_prompt: dict[int, int] = field(default_factory=dict)
    completion_tokens: int = 0
    # Engine counts are cumulative per sample: keep the latest of each.
    reasoning_by_sample: dict[tuple[int, int], int] = field(default_factory=dict)

    def add(self, prompt_index: int, output: RequestOutput) -> None:
        self.prompt_tokens_by_prompt[prompt_index] = len(output.prompt_token_ids)
        self.cached_tokens_by_prompt[prompt_index] = output.num_cached_tokens
        for completion in output.outputs:
            self.completion_tokens += len(completion.token_ids)
            self.reasoning_by_sample[prompt_index, completion.index] = completion.num_reasoning_tokens

    def as_dict(self) -> dict:
        return usage_body(
            sum(self.prompt_tokens_by_prompt.values()),
            sum(self.cached_tokens_by_prompt.values()),
            self.completion_tokens,
            sum(self.reasoning_by_sample.values()),
        )


def strategy_usage(usages: Sequence[TokenUsage]) -> dict:
    """Every request of every strategy run: all branches and probes, stopped ones included."""
    return usage_body(
        sum(usage.prompt_tokens for usage in usages),
        sum(usage.cached_prompt_tokens for usage in usages),
        sum(usage.generated_tokens for usage in usages),
        sum(usage.reasoning_tokens for usage in usages),
    )


def usage_body(prompt_tokens: int, cached_tokens: int, completion_tokens: int, reasoning_tokens: int) -> dict:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
    }
