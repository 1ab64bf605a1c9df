"""Self-consistency: n branches forked from one prefill, then a majority or confidence vote."""

from __future__ import annotations

from ponder.reasoning.specs import SelfConsistencySpec
from ponder.reasoning.strategies.base import (
    StrategyResult,
    StrategyRun,
    branch_params,
    record,
    require_sampling,
    result_from_vote,
)


async def run_self_consistency(run: StrategyRun) -> StrategyResult:
    spec: SelfConsistencySpec = run.spec
    require_sampling(run)
    top_k = spec.confidence_top_k if spec.vote == "confidence" else run.params.confidence_top_k
    params = branch_params(run.params, n=spec.n, confidence_top_k=top_k)
    handle = run.session.submit(run.prompt_ids(), params)
    await run.session.run_to_end(handle)
    records = [record(branch, run.session.name, spec.window) for branch in handle.branches]
    return result_from_vote(run, records, spec.vote)
