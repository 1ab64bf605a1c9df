"""Votes over extracted answers: majority or weighted, with equivalent answers counted together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ponder.reasoning.answers import normalize_answer


@dataclass(frozen=True)
class VoteResult:
    answer: str | None  # the winning answer as the first branch that gave it wrote it
    weight: float  # the winner's total weight
    share: float  # winner's weight / all weight cast (0 when nothing was cast)
    winner_index: int | None  # index (into the answers given) of the winner's first voter
    tallies: dict[str, float] = field(default_factory=dict)  # normalised answer -> weight
    tie: bool = False  # another answer had the same weight (the earliest one won)

    @property
    def num_votes(self) -> float:
        return sum(self.tallies.values())


def vote(answers: Sequence[str | None], weights: Sequence[float] | None = None) -> VoteResult:
    """Pick the answer with the largest total weight (1 per answer without weights).

    Equivalent answers ("12" and "12.0") pool their weight. Missing answers (None) cast no vote.
    A tie goes to the answer whose first voter came earliest, so the result never depends on
    dict order or on the sampler: branch order is fixed by the engine.
    """
    if weights is None:
        weights = [1.0] * len(answers)
    if len(weights) != len(answers):
        raise ValueError(f"{len(weights)} weights for {len(answers)} answers")
    tallies: dict[str, float] = {}
    first_voter: dict[str, int] = {}
    for index, (answer, weight) in enumerate(zip(answers, weights)):
        if answer is None:
            continue
        if weight < 0 or weight != weight:
            raise ValueError(f"vote weights must be non-negative numbers, got {weight!r}")
        key = normalize_answer(answer)
        tallies[key] = tallies.get(key, 0.0) + weight
        first_voter.setdefault(key, index)
    if not tallies:
        return VoteResult(answer=None, weight=0.0, share=0.0, winner_index=None)
    ranked = sorted(tallies, key=lambda key: (-tallies[key], first_voter[key]))
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
    )
