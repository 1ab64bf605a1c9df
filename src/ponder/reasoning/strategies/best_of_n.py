"""Best-of-N: n branches, the best by mean log-probability, confidence, a verifier or a reward model."""

from __future__ import annotations

import asyncio

from ponder.errors import InvalidRequestError
from ponder.reasoning.specs import BestOfNSpec
from ponder.reasoning.strategies.base import (
    BranchRecord,
    StrategyResult,
    StrategyRun,
    best_scored,
    branch_params,
    finish,
    record,
    require_sampling,
)


async def run_best_of_n(run: StrategyRun) -> StrategyResult:
    spec: BestOfNSpec = run.spec
    require_sampling(run)
    _check_scorer_available(run, spec)
    top_k = spec.confidence_top_k if spec.scorer == "confidence" else run.params.confidence_top_k
    handle = run.session.submit(run.prompt_ids(), branch_params(run.params, n=spec.n, confidence_top_k=top_k))
    await run.session.run_to_end(handle)
    records = [record(branch, run.session.name, spec.window) for branch in handle.branches]
    for branch in records:
        branch.score = await _score(run, spec, branch)
    return finish(run, best_scored(records), records, scorer=spec.scorer)


def _check_scorer_available(run: StrategyRun, spec: BestOfNSpec) -> None:
    if spec.scorer == "verifier" and run.verifier is None:
        raise InvalidRequestError(
            "scorer 'verifier' needs a verifier function (LLM.reason(..., verifier=fn)); "
            "none is configured here",
            param="reasoning_strategy.scorer",
        )
    if spec.scorer == "reward_model" and run.reward_scorer is None:
        raise InvalidRequestError(
            "scorer 'reward_model' needs reward models, and none are configured here",
            param="reasoning_strategy.reward_model",
        )
    if spec.scorer == "reward_model":
        run.reward_scorer.check(spec.reward_model)


async def _score(run: StrategyRun, spec: BestOfNSpec, branch: BranchRecord) -> float:
    if spec.scorer == "mean_logprob":
        return branch.mean_logprob
    if spec.scorer == "confidence":
        return branch.confidence or 0.0
    if spec.scorer == "verifier":
        return float(run.verifier(branch.content))
    question = run.prompt.question(run.session)
    # A reward model is a forward pass of its own: off the event loop, so engines keep stepping.
    return await asyncio.to_thread(run.reward_scorer, spec.reward_model, question, branch.content)
