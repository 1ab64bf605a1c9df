"""Confidence early stop (DeepConf online), on branches forked from one prefilled prompt.

1. Warm-up: `warmup` branches run to the end. Each gets its lowest group confidence (the mean
   token confidence of its weakest window of `window` tokens). The threshold is the percentile
   of those that keeps the top `keep_top` share of them.
2. The other branches (all at once, in waves of `wave`, with `rolling` in `wave` lanes that
   each start a branch when theirs ends, or with `wave="auto"` all at once while the engine has
   seats to spare, else in waves of 2) are watched token by token: a branch whose current
   group confidence falls below the threshold is stopped mid-generation and its KV freed; it
   does not vote.
3. Votes are weighted by confidence. As soon as the vote is decided (with at least `min_votes`
   voters), every branch still running is stopped: `stop_rule` "share" (DeepConf): the leading
   answer holds `consensus` of the weight; "beta" (Adaptive-Consistency): the leader is ahead of
   the runner-up with posterior probability `consensus`, given their vote counts.
4. With `probe_every`, every branch (warm-up included) is also probed for its current answer and
   stopped once `agree` probes in a row agree (`probing.AnswerProbes`): it votes with that answer.
"""

from __future__ import annotations

import dataclasses

from ponder.engine.sampling_params import SamplingParams
from ponder.reasoning.confidence import SlidingGroupConfidence, percentile
from ponder.reasoning.session import BranchState, EngineSession, RequestHandle
from ponder.reasoning.specs import AUTO_WAVE, ConfidenceSpec
from ponder.reasoning.strategies.base import (
    BranchRecord,
    StrategyResult,
    StrategyRun,
    branch_params,
    chosen_by_vote,
    finish,
    record,
    require_sampling,
    vote_over,
)
from ponder.reasoning.strategies.probing import AnswerProbes
from ponder.reasoning.voting import VoteResult, vote_decided

_WAVE_SEED_STRIDE = 1_000_003  # later waves must not replay the warm-up's seeded samples


@dataclasses.dataclass
class _State:
    threshold: float
    probes: AnswerProbes
    voters: list[BranchRecord] = dataclasses.field(default_factory=list)
    records: list[BranchRecord] = dataclasses.field(default_factory=list)
    outcome: VoteResult | None = None
    wave_sizes: list[int] = dataclasses.field(default_factory=list)  # branches per request

    def reached_consensus(self, spec: ConfidenceSpec) -> bool:
        if self.outcome is None:
            return False
        answered = sum(v.answer is not None for v in self.voters)
        return vote_decided(self.outcome, answered, spec.stop_rule, spec.consensus, spec.min_votes)


async def run_confidence(run: StrategyRun) -> StrategyResult:
    spec: ConfidenceSpec = run.spec
    require_sampling(run)
    session = run.session
    params = branch_params(run.params, confidence_top_k=spec.confidence_top_k)
    probes = AnswerProbes(
        session, run.prompt_ids(), spec.probe_plan(), skip_special_tokens=params.skip_special_tokens
    )
    warm = session.submit(run.prompt_ids(), branch_params(params, n=spec.warmup))
    probes.watch(warm)
    while not warm.finished:
        await session.wait()
        probes.update()
    warm_records = [record(branch, session.name, spec.window) for branch in warm.branches]
    threshold = percentile([r.confidence or 0.0 for r in warm_records], 100.0 * (1.0 - spec.keep_top))
    state = _State(threshold=threshold, probes=probes)
    for branch_record in warm_records:
        _admit(state, branch_record, spec)
    remaining = spec.n - spec.warmup
    while remaining > 0 and not state.reached_consensus(spec):
        lanes = _wave_size(spec, remaining, session)
        # rolling: one call runs the whole budget, each lane refilled the moment its branch ends
        size = remaining if spec.rolling else lanes
        remaining -= size
        await _watch(run, params, state, spec, budget=size, lanes=lanes)  # lanes <= size
    probes.cancel()
    if not state.voters:  # everything fell below the threshold: vote over what finished
        for branch_record in state.records:
            branch_record.discarded = branch_record.stopped
        state.voters = [r for r in state.records if not r.discarded]
    outcome = vote_over(state.voters, "confidence")
    chosen = _chosen(state.voters, outcome)
    return finish(
        run,
        chosen,
        state.records,
        answer=outcome.answer,
        vote=outcome,
        threshold=threshold,
        waves=len(state.wave_sizes),
        wave_sizes=state.wave_sizes,
        consensus_reached=state.reached_consensus(spec),
        lead_probability=outcome.lead_probability,  # the beta rule's measure, for either rule
        **probes.details(),
    )


def _wave_size(spec: ConfidenceSpec, remaining: int, session: EngineSession) -> int:
    """Branches to start now. "auto": on a GPU a lone problem's 16 branches cost about one
    branch's step time, so starting them all is fastest, while under load waves of 2 save the
    most tokens (each started only if the vote is still open); the engine's spare seats say
    which case holds."""
    if spec.wave is None:
        return remaining
    if spec.wave == "auto":
        seats_per_branch = 1 if spec.probe_every is None else 2  # a probed branch and its probe
        return min(remaining, max(AUTO_WAVE, session.spare_seats() // seats_per_branch))
    return min(spec.wave, remaining)


async def _watch(
    run: StrategyRun,
    params: SamplingParams,
    state: _State,
    spec: ConfidenceSpec,
    *,
    budget: int,
    lanes: int,
) -> None:
    """Run `budget` branches, `lanes` at a time, until they end or the vote is decided. One
    request of `lanes` branches when the lanes are the whole budget (a wave: one prefill);
    otherwise one request per branch, the next started as soon as a branch ends (rolling)."""
    session = run.session
    handles: list[RequestHandle] = []
    groups: dict[int, SlidingGroupConfidence] = {}
    seen: dict[int, int] = {}

    def start(size: int) -> None:
        nonlocal budget
        budget -= size
        state.wave_sizes.append(size)
        seed = None if params.seed is None else params.seed + len(state.wave_sizes) * _WAVE_SEED_STRIDE
        handle = session.submit(run.prompt_ids(), branch_params(params, n=size, seed=seed))
        handles.append(handle)
        state.probes.watch(handle)
        for branch in handle.branches:
            groups[id(branch)], seen[id(branch)] = SlidingGroupConfidence(spec.window), 0

    if lanes >= budget:
        start(budget)
    else:
        for _ in range(lanes):
            start(1)
    while not all(handle.finished for handle in handles):
        changed = await session.wait()
        state.probes.update()
        for branch in changed:
            if id(branch) not in groups:
                continue
            group = groups[id(branch)]
            group.extend(branch.confidences[seen[id(branch)] :])
            seen[id(branch)] = len(branch.confidences)
            if not branch.finished:
                if group.full and group.current < state.threshold:
                    session.stop_branch(branch)
                continue
            _finished(state, branch, session.name, spec)
            del groups[id(branch)]
            if state.reached_consensus(spec):
                for handle in handles:
                    session.cancel(handle)
            elif budget > 0:
                start(1)
    for handle in handles:  # cancelled branches never reported back on their own
        for branch in handle.branches:
            if id(branch) in groups:
                _finished(state, branch, session.name, spec)


def _finished(state: _State, branch: BranchState, model: str, spec: ConfidenceSpec) -> None:
    _admit(state, record(branch, model, spec.window), spec)


def _admit(state: _State, branch_record: BranchRecord, spec: ConfidenceSpec) -> None:
    state.records.append(branch_record)
    too_weak = (branch_record.confidence or 0.0) < state.threshold
    branch_record.discarded = branch_record.stopped or too_weak
    if not branch_record.discarded:
        state.voters.append(branch_record)
        state.outcome = vote_over(state.voters, "confidence")


def _chosen(voters: list[BranchRecord], outcome: VoteResult) -> BranchRecord | None:
    return chosen_by_vote(voters, outcome) or max(voters, key=lambda r: r.num_tokens, default=None)
