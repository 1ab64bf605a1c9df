"""Votes over extracted answers: majority or weighted, with equivalent answers counted together."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from ponder.tasks.answers import normalize_answer


@dataclass(frozen=True)
class VoteResult:
    answer: str | None  # the winning answer as the first branch that gave it wrote it
    weight: float  # the winner's total weight
    share: float  # winner's weight / all weight cast (0 when nothing was cast)
    winner_index: int | None  # index (into the answers given) of the winner's first voter
    tallies: dict[str, float] = field(default_factory=dict)  # normalised answer -> weight
    tie: bool = False  # another answer had the same weight (tie_scores, then the earliest, decided)
    votes: int = 0  # voters for the winner
    runner_up_votes: int = 0  # voters for the answer second by weight

    @property
    def num_votes(self) -> float:
        return sum(self.tallies.values())

    @property
    def lead_probability(self) -> float:
        """How sure the winner is to stay ahead of the runner-up if voting went on (see
        `lead_probability`); 0 when nothing was cast."""
        return lead_probability(self.votes, self.runner_up_votes) if self.answer is not None else 0.0


def vote_decided(
    outcome: VoteResult, answered: int, stop_rule: str, consensus: float, min_votes: int
) -> bool:
    """Whether a vote so far is settled, with at least `min_votes` of its voters answering:
    `share` (DeepConf): the winner holds `consensus` of the weight; `beta` (Adaptive-Consistency):
    the winner stays ahead of the runner-up with probability at least `consensus`."""
    if outcome.answer is None or answered < min_votes:
        return False
    sureness = outcome.share if stop_rule == "share" else outcome.lead_probability
    return sureness >= consensus


def lead_probability(leader_votes: int, runner_up_votes: int) -> float:
    """P(the leader's true share > the runner-up's), given their vote counts and a uniform prior
    over the two (Adaptive-Consistency's Beta stopping criterion). The posterior of the leader's
    part of the two is Beta(leader + 1, runner_up + 1), whose mass above 1/2 is, for integer
    parameters, the binomial tail P(Binomial(leader + runner_up + 1, 1/2) <= leader)."""
    if leader_votes < 0 or runner_up_votes < 0:
        raise ValueError(f"vote counts must be non-negative, got {leader_votes}, {runner_up_votes}")
    trials = leader_votes + runner_up_votes + 1
    return sum(math.comb(trials, k) for k in range(leader_votes + 1)) / 2**trials


def vote(
    answers: Sequence[str | None],
    weights: Sequence[float] | None = None,
    tie_scores: Sequence[float] | None = None,
) -> VoteResult:
    """Pick the answer with the largest total weight (1 per answer without weights).

    Equivalent answers ("12" and "12.0") pool their weight. Missing answers (None) cast no vote.
    A tie goes to the answer whose voters have the higher mean ``tie_scores`` (e.g. their mean
    log-probability: with few samples, 5-5 splits are common and the surer side is right more
    often), then to the one whose first voter came earliest, so the result never depends on
    dict order or on the sampler: branch order is fixed by the engine.
    """
    if weights is None:
        weights = [1.0] * len(answers)
    if tie_scores is None:
        tie_scores = [0.0] * len(answers)
    if not len(weights) == len(tie_scores) == len(answers):
        raise ValueError(f"{len(weights)} weights, {len(tie_scores)} tie scores for {len(answers)} answers")
    tallies: dict[str, float] = {}
    counts: dict[str, int] = {}
    first_voter: dict[str, int] = {}
    scores: dict[str, list[float]] = {}
    for index, (answer, weight, tie_score) in enumerate(zip(answers, weights, tie_scores)):
        if answer is None:
            continue
        if weight < 0 or weight != weight:
            raise ValueError(f"vote weights must be non-negative numbers, got {weight!r}")
        key = normalize_answer(answer)
        tallies[key] = tallies.get(key, 0.0) + weight
        counts[key] = counts.get(key, 0) + 1
        first_voter.setdefault(key, index)
        scores.setdefault(key, []).append(tie_score)
    if not tallies:
        return VoteResult(answer=None, weight=0.0, share=0.0, winner_index=None)

    def mean_score(key: str) -> float:
        return sum(scores[key]) / len(scores[key])

    ranked = sorted(tallies, key=lambda key: (-tallies[key], -mean_score(key), first_voter[key]))
    winner = ranked[0]
    total = sum(tallies.values())
    tie = len(ranked) > 1 and tallies[ranked[1]] == tallies[winner]
    return VoteResult(
        answer=answers[first_voter[winner]],
        weight=tallies[winner],
        share=tallies[winner] / total if total > 0 else 0.0,
        winner_index=first_voter[winner],
        tallies=tallies,
        tie=tie,
        votes=counts[winner],
        runner_up_votes=counts[ranked[1]] if len(ranked) > 1 else 0,
    )
