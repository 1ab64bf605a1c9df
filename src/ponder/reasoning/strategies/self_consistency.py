"""Self-consistency: n branches forked from one prefill, then a majority or confidence vote;
with `keep_top` < 1 only the most confident branches vote (DeepConf offline)."""

from __future__ import annotations

import math

from ponder.reasoning.specs import SelfConsistencySpec
from ponder.reasoning.strategies.base import (
    BranchRecord,
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
    reads_confidence = spec.vote == "confidence" or spec.keep_top < 1.0
    top_k = spec.confidence_top_k if reads_confidence else run.params.confidence_top_k
    params = branch_params(run.params, n=spec.n, confidence_top_k=top_k)
    handle = run.session.submit(run.prompt_ids(), params)
    await run.session.run_to_end(handle)
    records = [record(branch, run.session.name, spec.window) for branch in handle.branches]
    keep_most_confident(records, spec.keep_top)
    return result_from_vote(run, records, spec.vote)


def keep_most_confident(records: list[BranchRecord], share: float) -> None:
    """Discard all but the most confident `share` of the records (at least one; the earlier
    branch stays on a tie)."""
    if share >= 1.0:
        return
    keep = max(1, math.ceil(share * len(records)))
    ranked = sorted(records, key=lambda r: r.confidence or 0.0, reverse=True)
    for branch_record in ranked[keep:]:
        branch_record.discarded = True
