"""One thought: greedy (temperature 0, the baseline) or with the request's own sampling."""

from __future__ import annotations

from ponder.reasoning.strategies.base import StrategyResult, StrategyRun, branch_params, finish, record


async def run_single(run: StrategyRun) -> StrategyResult:
    overrides = {"temperature": 0.0} if run.spec.type == "greedy" else {}
    handle = run.session.submit(run.prompt_ids(), branch_params(run.params, n=1, **overrides))
    await run.session.run_to_end(handle)
    chosen = record(handle.branches[0], run.session.name, window=1)
    return finish(run, chosen, [chosen])
