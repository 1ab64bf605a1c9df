"""Multi-pass refinement: attempt, check, and try again with the attempt and its check as memory.

The check is a verifier function (right or wrong) or the model's own confidence in the attempt
(its lowest group confidence against `min_confidence`). A rejected attempt's answer and the
check's verdict go back into the context as new turns, and the next pass starts from there.
The first accepted attempt wins; when none is accepted, the best-checked one.
"""

from __future__ import annotations

from ponder.errors import InvalidRequestError
from ponder.reasoning.specs import RefineSpec
from ponder.reasoning.strategies.base import (
    BranchRecord,
    StrategyResult,
    StrategyRun,
    best_scored,
    branch_params,
    finish,
    record,
)

_PASS_SEED_STRIDE = 7_919


async def run_refine(run: StrategyRun) -> StrategyResult:
    spec: RefineSpec = run.spec
    if spec.check == "verifier" and run.verifier is None:
        raise InvalidRequestError(
            "check 'verifier' needs a verifier function (LLM.reason(..., verifier=fn)); "
            "none is configured here",
            param="reasoning_strategy.check",
        )
    session = run.session
    top_k = spec.confidence_top_k if spec.check == "confidence" else run.params.confidence_top_k
    memory: list[dict[str, str]] = []
    records: list[BranchRecord] = []
    accepted: BranchRecord | None = None
    for attempt in range(spec.passes):
        prompt_ids = run.prompt_ids() if not memory else run.prompt.token_ids_for(session, memory)
        seed = None if run.params.seed is None else run.params.seed + attempt * _PASS_SEED_STRIDE
        params = branch_params(run.params, n=1, seed=seed, confidence_top_k=top_k)
        handle = await session.run_to_end(session.submit(prompt_ids, params))
        branch_record = record(handle.branches[0], session.name, spec.window)
        branch_record.index = attempt
        ok, branch_record.score = _check(run, spec, branch_record)
        records.append(branch_record)
        if ok:
            accepted = branch_record
            break
        memory += _memory_turns(branch_record, spec)
    chosen = accepted or best_scored(records) or records[-1]
    return finish(run, chosen, records, passes=len(records), accepted=accepted is not None)


def _check(run: StrategyRun, spec: RefineSpec, attempt: BranchRecord) -> tuple[bool, float]:
    if spec.check == "verifier":
        verdict = run.verifier(attempt.content)
        score = float(verdict)
        return (verdict if isinstance(verdict, bool) else score > 0), score
    confidence = attempt.confidence or 0.0
    return attempt.answer is not None and confidence >= spec.min_confidence, confidence


def _memory_turns(attempt: BranchRecord, spec: RefineSpec) -> list[dict[str, str]]:
    answer_part = attempt.content.strip() or "(no final answer)"
    if attempt.answer is None:
        verdict = "Check: the attempt gave no final answer in \\boxed{}."
    elif spec.check == "verifier":
        verdict = f"Check: the answer {attempt.answer} is wrong."
    else:
        verdict = f"Check: the answer {attempt.answer} is uncertain and may be wrong."
    return [
        {"role": "assistant", "content": answer_part},
        {"role": "user", "content": f"{verdict} Solve the problem again, step by step."},
    ]
