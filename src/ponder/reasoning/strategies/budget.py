"""Thinking budget and budget forcing (s1): cap the thought, or extend one that ends too early.

The cap is the engine's own `thinking_budget` (it closes the thought with the model's closing
marker and the model answers). To extend, generation stops at the closing marker while the
thought is shorter than `min_thinking`; the thought then goes on in a new request whose prompt is
the thought so far plus the continuation cue ("Wait"), which finds the thought's KV in the prefix
cache.
"""

from __future__ import annotations

from ponder.errors import InvalidRequestError
from ponder.reasoning.specs import BudgetSpec
from ponder.reasoning.strategies.base import (
    BranchRecord,
    StrategyResult,
    StrategyRun,
    branch_params,
    finish,
)
from ponder.tasks.answers import extract_answer


async def run_budget(run: StrategyRun) -> StrategyResult:
    spec: BudgetSpec = run.spec
    session = run.session
    if session.markers is None:
        raise InvalidRequestError(
            "strategy 'budget' needs a reasoning model (one whose tokenizer has think markers)",
            param="reasoning_strategy.type",
        )
    end_id = session.markers.end_id
    cue_ids = session.tokenizer.encode(spec.continuation, add_special_tokens=False)
    prompt = list(run.prompt_ids())
    generated_ids: list[int] = []  # every request's output after the prompt, cues included
    thinking, generated, extensions = 0, 0, 0
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
        handle = await session.run_to_end(session.submit(prompt + generated_ids, params))
        branch = handle.branches[0]
        thinking += branch.num_reasoning_tokens
        generated += branch.num_tokens
        finish_reason = branch.finish_reason
        stopped_at_close = extend and branch.token_ids[-1:] == [end_id]
        if not stopped_at_close:
            generated_ids += branch.token_ids
            break
        if thinking < spec.min_thinking and extensions < spec.max_extensions:
            # Too short: drop the closing marker the model wrote and think on after the cue.
            generated_ids += branch.token_ids[:-1] + cue_ids
            extensions += 1
        else:  # long enough now: keep the close and answer
            generated_ids += branch.token_ids
    # One split of everything generated: the thought with its cues, then the answer.
    split = session.split(prompt, generated_ids)
    combined = BranchRecord(
        model=session.name,
        index=0,
        reasoning=split.reasoning,
        content=split.content,
        answer=extract_answer(split.content, split.reasoning),
        token_ids=split.token_ids,
        num_tokens=generated,
        num_reasoning_tokens=thinking,
        finish_reason=finish_reason,
        stopped=False,
        mean_logprob=0.0,
    )
    return finish(run, combined, [combined], extensions=extensions, thinking_tokens=thinking)
