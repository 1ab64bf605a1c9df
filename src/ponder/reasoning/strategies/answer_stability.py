"""Answer-stability early stop (Dynasor / Certaindex) on live thoughts.

Every `probe_every` thinking tokens, a probe is forked from the live thought: a new request whose
prompt is the thought so far plus `probe_text` (by default "\\n</think>\\n\\n\\boxed{", so the
model writes its current answer at once). Prefix caching gives the probe every full KV block of
the thought, so a probe costs its few new tokens. When the last `agree` probes give the same
answer, the thought is stopped and answered with the probe's text; a thought that closes on its
own first keeps its own answer. With n > 1 thoughts, their answers are voted on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ponder.engine.sampling_params import SamplingParams
from ponder.reasoning.answers import answers_equal, extract_answer
from ponder.reasoning.session import PROBE, BranchState, EngineSession, RequestHandle
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


@dataclass
class _Thought:
    branch: BranchState
    next_probe_at: int
    probe: RequestHandle | None = None
    probe_prefix: str = ""  # the thought's text when the probe in flight was forked
    answers: list[str | None] = field(default_factory=list)
    settled_text: str | None = None  # thought + probe text + probe output, once stable

    def in_thought(self, end_id: int | None) -> bool:
        return not self.branch.finished and end_id not in self.branch.token_ids


async def run_answer_stability(run: StrategyRun) -> StrategyResult:
    spec: AnswerStabilitySpec = run.spec
    if spec.n > 1:
        require_sampling(run)
    session = run.session
    prompt_ids = run.prompt_ids()
    probe_ids = session.tokenizer.encode(spec.probe_text, add_special_tokens=False)
    probe_params = SamplingParams(
        temperature=0.0,
        max_tokens=spec.probe_max_tokens,
        skip_special_tokens=run.params.skip_special_tokens,
    )
    handle = session.submit(prompt_ids, branch_params(run.params, n=spec.n))
    first_probe = max(spec.min_thinking, spec.probe_every)
    thoughts = [_Thought(branch, first_probe) for branch in handle.branches]
    while session.in_flight:
        await session.wait()
        for thought in thoughts:
            _read_probe(session, thought, spec)
            if thought.settled_text is None and thought.probe is None:
                _maybe_probe(session, thought, prompt_ids, probe_ids, probe_params, spec)
    records = []
    for thought in thoughts:
        branch_record = record(thought.branch, session.name, window=1)
        if thought.settled_text is not None:
            branch_record.text = thought.settled_text
            branch_record.answer = extract_answer(thought.settled_text)
            branch_record.finish_reason = "stop"
        records.append(branch_record)
    probes = sum(len(t.answers) for t in thoughts)
    settled = sum(t.settled_text is not None for t in thoughts)
    if spec.n == 1:
        return finish(run, records[0], records, probes=probes, settled=settled)
    return result_from_vote(run, records, "majority", probes=probes, settled=settled)


def _maybe_probe(
    session: EngineSession,
    thought: _Thought,
    prompt_ids: list[int],
    probe_ids: list[int],
    probe_params: SamplingParams,
    spec: AnswerStabilitySpec,
) -> None:
    branch = thought.branch
    if not thought.in_thought(session.think_end_id):
        return
    if branch.num_reasoning_tokens < thought.next_probe_at:
        return
    thought.probe_prefix = branch.text
    thought.probe = session.submit(prompt_ids + branch.token_ids + probe_ids, probe_params, kind=PROBE)
    thought.next_probe_at = (branch.num_reasoning_tokens // spec.probe_every + 1) * spec.probe_every


def _read_probe(session: EngineSession, thought: _Thought, spec: AnswerStabilitySpec) -> None:
    probe = thought.probe
    if probe is None:
        return
    if thought.branch.finished and thought.settled_text is None:
        session.cancel(probe)  # the thought answered on its own: the probe is moot
        thought.probe = None
        return
    if not probe.finished:
        return
    thought.probe = None
    probe_text = spec.probe_text + probe.branches[0].text
    thought.answers.append(extract_answer(probe_text))
    recent = thought.answers[-spec.agree :]
    stable = len(recent) == spec.agree and all(
        answer is not None and answers_equal(answer, recent[0]) for answer in recent
    )
    if stable:
        thought.settled_text = thought.probe_prefix + probe_text
        session.stop_branch(thought.branch)
