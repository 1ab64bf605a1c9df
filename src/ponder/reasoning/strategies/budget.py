"""Thinking budget and budget forcing (s1): cap the thought, or extend one that ends too early.

The cap is the engine's own `thinking_budget` (it closes the thought with "\\n</think>\\n\\n" and
the model answers). To extend, generation stops at `</think>` while the thought is shorter than
`min_thinking`; the thought then goes on in a new request whose prompt is the thought so far
plus the continuation cue ("Wait"), which finds the thought's KV in the prefix cache.
"""

from __future__ import annotations

from ponder.errors import InvalidRequestError
from ponder.reasoning.answers import extract_answer
from ponder.reasoning.specs import BudgetSpec
from ponder.reasoning.strategies.base import (
    BranchRecord,
    StrategyResult,
    StrategyRun,
    branch_params,
    finish,
)


async def run_budget(run: StrategyRun) -> StrategyResult:
    spec: BudgetSpec = run.spec
    session = run.session
    end_id = session.think_end_id
    if end_id is None:
        raise InvalidRequestError(
            "strategy 'budget' needs a reasoning model (one with <think> and </think> tokens)",
            param="reasoning_strategy.type",
        )
    cue_ids = session.tokenizer.encode(spec.continuation, add_special_tokens=False)
    context = list(run.prompt_ids())
    text, thinking, generated, extensions = "", 0, 0, 0
    finish_reason: str | None = None
    while True:
        extend = thinking < spec.min_thinking and extensions < spec.max_extensions
        budget = spec.thinking_budget if spec.thinking_budget is not None else run.params.thinking_budget
        if budget is not None:
            budget = max(1, budget - thinking)
        max_tokens = run.params.max_tokens
        if max_tokens is not None:
            max_tokens -= generated
            if max_tokens < 1:
                break
        stop_ids = [*run.params.stop_token_ids, end_id] if extend else run.params.stop_token_ids
        params = branch_params(
            run.params, n=1, thinking_budget=budget, max_tokens=max_tokens, stop_token_ids=stop_ids
        )
        handle = await session.run_to_end(session.submit(context, params))
        branch = handle.branches[0]
        thinking += branch.num_reasoning_tokens
        generated += branch.num_tokens
        finish_reason = branch.finish_reason
        stopped_at_close = extend and branch.token_ids[-1:] == [end_id]
        if not stopped_at_close:
            text += branch.text
            break
        if thinking < spec.min_thinking and extensions < spec.max_extensions:
            # Too short: drop the `</think>` the model wrote and think on after the cue.
            context += branch.token_ids[:-1] + cue_ids
            text += branch.text + spec.continuation
            extensions += 1
        else:  # long enough now: keep the close (a stop token is not in the text) and answer
            context += branch.token_ids
            text += branch.text + "</think>"
    combined = BranchRecord(
        model=session.name,
        index=0,
        text=text,
        answer=extract_answer(text),
        num_tokens=generated,
        num_reasoning_tokens=thinking,
        finish_reason=finish_reason,
        stopped=False,
        mean_logprob=0.0,
    )
    return finish(run, combined, [combined], extensions=extensions, thinking_tokens=thinking)
