"""Model ensembles: one vote over branches of several models, or a cascade from small to large."""

from __future__ import annotations

import asyncio

from ponder.errors import InvalidRequestError
from ponder.reasoning.session import EngineSession
from ponder.reasoning.specs import CascadeSpec, EnsembleSpec
from ponder.reasoning.strategies.base import (
    BranchRecord,
    StrategyResult,
    StrategyRun,
    branch_params,
    chosen_by_vote,
    finish,
    record,
    require_sampling,
    result_from_vote,
    vote_over,
)


async def run_ensemble(run: StrategyRun) -> StrategyResult:
    spec: EnsembleSpec = run.spec
    require_sampling(run)
    sessions = _sessions(run, spec.models)
    # Each model's engine batches its own branches; the models run side by side.
    per_model = await asyncio.gather(*(_sample(run, session, spec) for session in sessions))
    records = [branch for branches in per_model for branch in branches]
    return result_from_vote(run, records, spec.vote, models=[s.name for s in sessions])


async def run_cascade(run: StrategyRun) -> StrategyResult:
    spec: CascadeSpec = run.spec
    require_sampling(run)
    sessions = _sessions(run, spec.models)
    records: list[BranchRecord] = []
    for stage, session in enumerate(sessions):
        stage_records = await _sample(run, session, spec)
        records += stage_records
        outcome = vote_over(stage_records, spec.vote)
        last = stage == len(sessions) - 1
        if outcome.share >= spec.accept_share or last:
            chosen = chosen_by_vote(stage_records, outcome)
            return finish(
                run,
                chosen,
                records,
                answer=outcome.answer,
                vote=outcome,
                answered_by=session.name,
                stages=stage + 1,
            )
    raise AssertionError("unreachable: the last stage always answers")


def _sessions(run: StrategyRun, names: tuple[str, ...]) -> list[EngineSession]:
    sessions = [run.model(name) for name in names]
    if len({id(s) for s in sessions}) != len(sessions):
        raise InvalidRequestError(
            f"reasoning_strategy.models names a model twice: {list(names)}",
            param="reasoning_strategy.models",
        )
    if run.prompt.messages is None and run.prompt.text is None and len(sessions) > 1:
        raise InvalidRequestError(
            "an ensemble needs the prompt as text or messages (each model tokenizes it itself)",
            param="prompt",
        )
    return sessions


async def _sample(
    run: StrategyRun, session: EngineSession, spec: EnsembleSpec | CascadeSpec
) -> list[BranchRecord]:
    top_k = spec.confidence_top_k if spec.vote == "confidence" else run.params.confidence_top_k
    params = branch_params(run.params, n=spec.n, confidence_top_k=top_k)
    handle = await session.run_to_end(session.submit(run.prompt_ids(session), params))
    return [record(branch, session.name, spec.window) for branch in handle.branches]
