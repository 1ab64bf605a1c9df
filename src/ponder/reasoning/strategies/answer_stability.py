"""Answer-stability early stop (Dynasor / Certaindex) on live thoughts.

Each thought is probed every `probe_every` thinking tokens (`probing.AnswerProbes`); when the last
`agree` probes give the same answer, the thought is stopped and answered with the probe's text; a
thought that closes on its own first keeps its own answer. With n > 1 thoughts, their answers are
voted on.
"""

from __future__ import annotations

from ponder.reasoning.specs import AnswerStabilitySpec
from ponder.reasoning.strategies.base import (
    StrategyResult,
    StrategyRun,
    branch_params,
    finish,
    record,
    require_sampling,
    result_from_vote,
)
from ponder.reasoning.strategies.probing import AnswerProbes


async def run_answer_stability(run: StrategyRun) -> StrategyResult:
    spec: AnswerStabilitySpec = run.spec
    if spec.n > 1:
        require_sampling(run)
    session = run.session
    prompt_ids = run.prompt_ids()
    probes = AnswerProbes(
        session, prompt_ids, spec.probe_plan(), skip_special_tokens=run.params.skip_special_tokens
    )
    handle = session.submit(prompt_ids, branch_params(run.params, n=spec.n))
    probes.watch(handle)
    while session.in_flight:
        await session.wait()
        probes.update()
    records = [record(branch, session.name, window=1) for branch in handle.branches]
    if spec.n == 1:
        return finish(run, records[0], records, **probes.details())
    return result_from_vote(run, records, "majority", **probes.details())
