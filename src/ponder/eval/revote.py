"""Re-vote a recorded `ponder eval --json` run: other vote rules, confidence filters and sample
counts over the branches it already generated, with no model (DeepConf's offline mode).

Generating is the expensive part of self-consistency; how its branches are counted is not. A run
recorded once with per-branch answers, confidences and mean log-probabilities answers "would a
confidence-weighted vote do better?", "does keeping the surest half help?" and "how much of the
gain do 4 samples already give?" in a second, on exactly the same samples.

Votes are the engine's own (`ponder.reasoning.voting.vote`, ties to the surer answer, then the
earlier branch), so replaying the rule a run used reproduces its answers.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ponder.errors import InvalidRequestError
from ponder.reasoning.answers import answers_equal
from ponder.reasoning.voting import vote

Weight = Literal["majority", "confidence", "logprob"]
Rank = Literal["confidence", "logprob"]
_WEIGHTS: tuple[str, ...] = ("majority", "confidence", "logprob")
_RANKS: tuple[str, ...] = ("confidence", "logprob")
DEFAULT_SUBSETS = 64  # random subsets per problem when a vote uses fewer branches than were run


@dataclass(frozen=True)
class VoteRule:
    """How a problem's recorded branches vote.

    `weight`: one vote each (majority), the branch's lowest group confidence (confidence), or its
    geometric-mean token probability exp(mean log-probability) (logprob). `keep_top`: only the
    surest share of the branches vote, ranked by `rank` (DeepConf's filter). `samples`: vote over
    this many of the branches (the mean over random subsets of that size; None: all of them).
    """

    weight: Weight = "majority"
    keep_top: float = 1.0
    rank: Rank = "confidence"
    samples: int | None = None

    @property
    def label(self) -> str:
        knobs = []
        if self.keep_top < 1.0:
            knobs.append(f"keep_top={self.keep_top:g},rank={self.rank}")
        if self.samples is not None:
            knobs.append(f"n={self.samples}")
        return self.weight + (":" + ",".join(knobs) if knobs else "")

    @property
    def reads_confidence(self) -> bool:
        return self.weight == "confidence" or (self.keep_top < 1.0 and self.rank == "confidence")


def parse_rule(text: str) -> VoteRule:
    """`WEIGHT[:key=value,...]`, e.g. `majority`, `confidence:keep_top=0.1`, `majority:n=4`,
    `logprob:keep_top=0.5,rank=logprob`."""
    name, _, rest = text.strip().partition(":")
    if name not in _WEIGHTS:
        raise _bad(f"unknown vote weight {name!r} in {text!r}; valid: {', '.join(_WEIGHTS)}")
    knobs: dict = {"weight": name}
    for pair in filter(None, (part.strip() for part in rest.split(","))):
        key, equals, value = pair.partition("=")
        if not equals:
            raise _bad(f"expected key=value, got {pair!r} in {text!r}")
        if key == "keep_top":
            knobs["keep_top"] = _number(value, float, key)
            if not 0.0 < knobs["keep_top"] <= 1.0:
                raise _bad(f"keep_top must be in (0, 1], got {value}")
        elif key == "rank":
            if value not in _RANKS:
                raise _bad(f"rank must be one of {', '.join(_RANKS)}, got {value!r}")
            knobs["rank"] = value
        elif key == "n":
            knobs["samples"] = _number(value, int, key)
            if knobs["samples"] < 1:
                raise _bad(f"n must be >= 1, got {value}")
        else:
            raise _bad(f"unknown key {key!r} in {text!r}; valid: keep_top, rank, n")
    return VoteRule(**knobs)


@dataclass(frozen=True)
class RuleOutcome:
    strategy: str
    rule: str
    voters: float  # mean branches that voted per problem
    scores: dict[str, float]  # problem key -> expected correctness (0..1; a mean over subsets)
    pass_at: float  # share of problems with the gold answer among the voters (the ceiling of any vote)

    @property
    def accuracy(self) -> float:
        return sum(self.scores.values()) / len(self.scores)


def problem_key(item: dict) -> str:
    return f"{item['family']}|{item['difficulty']}|{item['item_id']}"


def revote(
    strategy: str,
    items: Sequence[dict],
    rule: VoteRule,
    *,
    subsets: int = DEFAULT_SUBSETS,
    seed: int = 0,
) -> RuleOutcome:
    """Score `rule` on a recorded strategy's items (`ponder eval --json` item dicts)."""
    if not items:
        raise _bad(f"{strategy!r} has no items to re-vote")
    scores, passes, voters = {}, 0.0, 0.0
    for item in items:
        _check_branches(strategy, item, rule)
        total = len(item["branch_answers"])
        size = total if rule.samples is None else rule.samples
        if size > total:
            raise _bad(f"n={size} is more than the {total} branches {strategy!r} recorded per problem")
        draws = _subsets(total, size, subsets, f"{seed}|{problem_key(item)}|{size}")
        outcomes = [_vote_once(item, chosen, rule) for chosen in draws]
        scores[problem_key(item)] = sum(right for right, _, _ in outcomes) / len(outcomes)
        passes += sum(any_right for _, any_right, _ in outcomes) / len(outcomes)
        voters += sum(count for _, _, count in outcomes) / len(outcomes)
    return RuleOutcome(strategy, rule.label, voters / len(items), scores, passes / len(items))


def default_rules(items: Sequence[dict]) -> list[VoteRule]:
    """Majority at 1, 2, 4, ... up to every branch (the scaling curve), then the weighted and
    filtered votes the recording supports."""
    total = min(len(item["branch_answers"]) for item in items)
    sizes = sorted({2**k for k in range(total.bit_length()) if 2**k < total} | {total})
    rules = [VoteRule(samples=size) for size in sizes[:-1]] + [VoteRule()]
    rules += [VoteRule("logprob"), VoteRule("majority", keep_top=0.5, rank="logprob")]
    if has_confidences(items):
        rules += [
            VoteRule("confidence"),
            VoteRule("confidence", keep_top=0.9),  # DeepConf-high
            VoteRule("confidence", keep_top=0.5),
            VoteRule("confidence", keep_top=0.1),  # DeepConf-low
        ]
    return rules


def has_confidences(items: Sequence[dict]) -> bool:
    return all(c is not None for item in items for c in item.get("branch_confidences", [None]))


def votable(strategy: dict) -> bool:
    """Whether a recorded strategy has several branches per problem with their records."""
    items = strategy.get("items") or []
    return bool(items) and all(
        len(item.get("branch_answers", [])) > 1 and "branch_mean_logprobs" in item for item in items
    )


def _vote_once(item: dict, chosen: Sequence[int], rule: VoteRule) -> tuple[bool, bool, int]:
    """(vote right, any voter right, voters) for one subset of the branches."""
    answers = [item["branch_answers"][i] for i in chosen]
    logprobs = [item["branch_mean_logprobs"][i] for i in chosen]
    confidences = [item["branch_confidences"][i] if rule.reads_confidence else 0.0 for i in chosen]
    voters = list(range(len(chosen)))
    if rule.keep_top < 1.0:
        by = confidences if rule.rank == "confidence" else logprobs
        keep = max(1, math.ceil(rule.keep_top * len(chosen)))
        # sorted() is stable: on equal scores the earlier branch stays, as in the engine.
        voters = sorted(sorted(voters, key=lambda i: by[i], reverse=True)[:keep])
    weights = [_weight(rule.weight, confidences[i], logprobs[i]) for i in voters]
    result = vote([answers[i] for i in voters], weights, [logprobs[i] for i in voters])
    right = [answers_equal(answers[i], item["gold"]) for i in voters]
    won = result.winner_index is not None and right[result.winner_index]
    return won, any(right), len(voters)


def _weight(how: str, confidence: float, mean_logprob: float) -> float:
    if how == "confidence":
        return max(0.0, confidence)
    if how == "logprob":
        return math.exp(mean_logprob)
    return 1.0


def _subsets(total: int, size: int, limit: int, seed: str) -> list[tuple[int, ...]]:
    """Every `size`-subset of `total` branches when there are at most `limit`, else `limit`
    random ones (seeded per problem, so a re-vote repeats exactly); indices in branch order."""
    if math.comb(total, size) <= limit:
        return list(itertools.combinations(range(total), size))
    rng = random.Random(seed)
    return [tuple(sorted(rng.sample(range(total), size))) for _ in range(limit)]


def _check_branches(strategy: str, item: dict, rule: VoteRule) -> None:
    answers = item.get("branch_answers")
    logprobs = item.get("branch_mean_logprobs")
    if not answers or logprobs is None or len(logprobs) != len(answers):
        raise _bad(
            f"{strategy!r} item {item.get('item_id')!r} has no per-branch records to re-vote "
            "(recorded by an older ponder eval?)"
        )
    if rule.reads_confidence and any(c is None for c in item.get("branch_confidences", [None])):
        raise _bad(
            f"rule {rule.label!r} needs branch confidences, which {strategy!r} did not record; run "
            "the strategy with vote=confidence (or keep_top < 1) to record them"
        )


def _number(value: str, kind: type, key: str):
    try:
        return kind(value)
    except ValueError:
        raise _bad(f"{key} must be a number, got {value!r}") from None


def _bad(message: str) -> InvalidRequestError:
    return InvalidRequestError(message, param="rule")
