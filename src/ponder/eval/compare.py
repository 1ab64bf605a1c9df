"""Paired comparison of two strategies on the same items: is A really better than B?

Strategies scored on the same problems are compared problem by problem: the accuracy difference
is the mean of per-problem differences (1, 0 or -1), and its 95% interval comes from their
standard error (a paired test: problems both get right or both miss carry no noise). On a few
hundred problems the interval is several points wide, which a table of two accuracies hides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ponder.errors import InvalidRequestError
from ponder.eval.runner import StrategyEval

_Z95 = 1.959964


@dataclass(frozen=True)
class Comparison:
    strategy: str
    reference: str
    num_items: int  # problems both were scored on
    accuracy_diff: float  # strategy minus reference, as a fraction (0.01 = one point)
    ci95_low: float
    ci95_high: float
    won: int  # problems only the strategy got right
    lost: int  # problems only the reference got right
    tokens_change: float  # mean generated tokens per problem, relative to the reference (-0.4: 40% fewer)

    def describe(self) -> str:
        return (
            f"{self.strategy} vs {self.reference} ({self.num_items} paired problems): accuracy "
            f"{100 * self.accuracy_diff:+.1f} points (95% CI {100 * self.ci95_low:+.1f} to "
            f"{100 * self.ci95_high:+.1f}; won {self.won}, lost {self.lost}), "
            f"tokens {100 * self.tokens_change:+.1f}%"
        )


def compare(evaluation: StrategyEval, reference: StrategyEval) -> Comparison:
    """`evaluation` against `reference`, over the problems both were scored on."""
    theirs = {(i.family, i.difficulty, i.item_id): i for i in reference.items}
    pairs = [
        (item, theirs[key])
        for item in evaluation.items
        if (key := (item.family, item.difficulty, item.item_id)) in theirs
    ]
    if not pairs:
        raise InvalidRequestError(
            f"{evaluation.label!r} and {reference.label!r} share no problems", param="reference"
        )
    diffs = [int(mine.correct) - int(other.correct) for mine, other in pairs]
    mean, low, high = paired_interval(diffs)
    tokens = sum(mine.generated_tokens for mine, _ in pairs)
    reference_tokens = sum(other.generated_tokens for _, other in pairs)
    return Comparison(
        strategy=evaluation.label,
        reference=reference.label,
        num_items=len(pairs),
        accuracy_diff=mean,
        ci95_low=low,
        ci95_high=high,
        won=diffs.count(1),
        lost=diffs.count(-1),
        tokens_change=tokens / reference_tokens - 1.0 if reference_tokens else 0.0,
    )


def paired_interval(diffs: list[float]) -> tuple[float, float, float]:
    """Mean of per-problem differences and its 95% interval (normal approximation)."""
    n = len(diffs)
    mean = sum(diffs) / n
    variance = sum((d - mean) ** 2 for d in diffs) / (n - 1) if n > 1 else 0.0
    half_width = _Z95 * math.sqrt(variance / n)
    return mean, mean - half_width, mean + half_width


def check_reference(labels: list[str], reference_label: str) -> None:
    if reference_label not in labels:
        raise InvalidRequestError(
            f"--reference {reference_label!r} is not one of the strategies: {', '.join(labels)}",
            param="reference",
        )


def compare_all(evaluations: list[StrategyEval], reference_label: str) -> list[Comparison]:
    """Every other strategy against the one labelled `reference_label`."""
    check_reference([evaluation.label for evaluation in evaluations], reference_label)
    reference = next(e for e in evaluations if e.label == reference_label)
    return [compare(e, reference) for e in evaluations if e is not reference]
