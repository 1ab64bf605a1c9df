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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from ponder.errors import InvalidRequestError
from ponder.reasoning.voting import VoteResult, vote, vote_decided
from ponder.tasks.answers import answers_equal

Weight = Literal["majority", "confidence", "logprob"]
Rank = Literal["confidence", "logprob"]
Stop = Literal["none", "share", "beta"]
_WEIGHTS: tuple[str, ...] = ("majority", "confidence", "logprob")
DEFAULT_SUBSETS = 64  # random subsets per problem when a vote uses fewer branches than were run
_MIN_VOTES = 2  # a stop rule needs this many answers (the `confidence` strategy's default)


@dataclass(frozen=True)
class VoteRule:
    """How a problem's recorded branches vote.

    `weight`: one vote each (majority), the branch's lowest group confidence (confidence), or its
    geometric-mean token probability exp(mean log-probability) (logprob). `keep_top`: only the
    surest share of the branches vote, ranked by `rank` (DeepConf's filter). `samples`: vote over
    this many of the branches (the mean over random subsets of that size; None: all of them).
    `stop`: read the branches in their recorded order, `warmup` first, then one at a time, and
    stop once the vote is decided (`share` or `beta` at `consensus`, as the `confidence` strategy
    decides): how many branches, and tokens, an early stop would have needed.
    """

    weight: Weight = "majority"
    keep_top: float = 1.0
    rank: Rank = "confidence"
    samples: int | None = None
    stop: Stop = "none"
    consensus: float = 0.95
    warmup: int = 4

    def __post_init__(self) -> None:
        if self.stop != "none" and self.keep_top < 1.0:
            raise _bad(
                "keep_top and stop do not combine: a filter ranks every branch, a stop reads them in order"
            )

    @property
    def label(self) -> str:
        knobs = []
        if self.keep_top < 1.0:
            knobs.append(f"keep_top={self.keep_top:g},rank={self.rank}")
        if self.samples is not None:
            knobs.append(f"n={self.samples}")
        if self.stop != "none":
            knobs.append(f"stop={self.stop},consensus={self.consensus:g},warmup={self.warmup}")
        return self.weight + (":" + ",".join(knobs) if knobs else "")

    @property
    def reads_confidence(self) -> bool:
        return self.weight == "confidence" or (self.keep_top < 1.0 and self.rank == "confidence")


class _Rejected(ValueError):
    """A knob's value parsed but is out of range; the message says what it must be."""


def _fraction(value: str) -> float:
    number = float(value)
    if not 0.0 < number <= 1.0:
        raise _Rejected(f"must be in (0, 1], got {value}")
    return number


def _count(value: str) -> int:
    number = int(value)
    if number < 1:
        raise _Rejected(f"must be >= 1, got {value}")
    return number


def _one_of(*choices: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in choices:
            raise _Rejected(f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    return parse


# rule key -> (VoteRule field, parser that raises ValueError with the reason)
_KNOBS = {
    "keep_top": ("keep_top", _fraction),
    "rank": ("rank", _one_of("confidence", "logprob")),
    "n": ("samples", _count),
    "stop": ("stop", _one_of("none", "share", "beta")),
    "consensus": ("consensus", _fraction),
    "warmup": ("warmup", _count),
}


def parse_rule(text: str) -> VoteRule:
    """`WEIGHT[:key=value,...]`, e.g. `majority`, `confidence:keep_top=0.1`, `majority:n=4`,
    `logprob:keep_top=0.5,rank=logprob`, `confidence:stop=beta,consensus=0.9`."""
    name, _, rest = text.strip().partition(":")
    if name not in _WEIGHTS:
        raise _bad(f"unknown vote weight {name!r} in {text!r}; valid: {', '.join(_WEIGHTS)}")
    knobs: dict = {"weight": name}
    for pair in filter(None, (part.strip() for part in rest.split(","))):
        key, equals, value = pair.partition("=")
        if not equals:
            raise _bad(f"expected key=value, got {pair!r} in {text!r}")
        if key not in _KNOBS:
            raise _bad(f"unknown key {key!r} in {text!r}; valid: {', '.join(_KNOBS)}")
        field, parse = _KNOBS[key]
        try:
            knobs[field] = parse(value.strip())
        except _Rejected as reason:
            raise _bad(f"{key} {reason}") from None
        except ValueError:
            raise _bad(f"{key} must be a number, got {value!r}") from None
    return VoteRule(**knobs)


@dataclass(frozen=True)
class RuleOutcome:
    strategy: str
    rule: str
    voters: float  # mean branches that voted per problem
    tokens: float  # mean generated tokens per problem of the branches the rule read
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
    scores: dict[str, float] = {}
    totals = [0.0, 0.0, 0.0]  # pass, voters, tokens
    for item in items:
        _check_branches(strategy, item, rule)
        total = len(item["branch_answers"])
        size = total if rule.samples is None else rule.samples
        if size > total:
            raise _bad(f"n={size} is more than the {total} branches {strategy!r} recorded per problem")
        draws = _subsets(total, size, subsets, f"{seed}|{problem_key(item)}|{size}")
        outcomes = [_vote_once(item, chosen, rule) for chosen in draws]
        scores[problem_key(item)] = sum(outcome[0] for outcome in outcomes) / len(outcomes)
        for k in range(3):
            totals[k] += sum(outcome[k + 1] for outcome in outcomes) / len(outcomes)
    passes, voters, tokens = (value / len(items) for value in totals)
    return RuleOutcome(strategy, rule.label, voters, tokens, scores, passes)


def default_rules(items: Sequence[dict]) -> list[VoteRule]:
    """Majority at 1, 2, 4, ... up to every branch (the scaling curve), the early stops, then the
    weighted and filtered votes the recording supports."""
    total = min(len(item["branch_answers"]) for item in items)
    sizes = sorted({2**k for k in range(total.bit_length()) if 2**k < total} | {total})
    rules = [VoteRule(samples=size) for size in sizes[:-1]] + [VoteRule()]
    rules += [VoteRule("logprob"), VoteRule("majority", keep_top=0.5, rank="logprob")]
    # The two stop rules of the `confidence` strategy, as its shipped recipe and DeepConf set them.
    rules += [VoteRule(stop="beta", consensus=0.9), VoteRule(stop="share", consensus=0.95)]
    if has_confidences(items):
        rules += [
            VoteRule("confidence"),
            VoteRule("confidence", keep_top=0.9),  # DeepConf-high
            VoteRule("confidence", keep_top=0.5),
            VoteRule("confidence", keep_top=0.1),  # DeepConf-low
        ]
    return rules


def has_confidences(items: Sequence[dict]) -> bool:
    """Whether every branch of every item has its lowest group confidence recorded."""
    return all(c is not None for item in items for c in item.get("branch_confidences", [None]))


def votable(strategy: dict) -> bool:
    """Whether a recorded strategy has several branches per problem with their records."""
    items = strategy.get("items") or []
    return bool(items) and all(
        len(item.get("branch_answers", [])) > 1 and "branch_mean_logprobs" in item for item in items
    )


def _vote_once(item: dict, chosen: Sequence[int], rule: VoteRule) -> tuple[bool, bool, int, int]:
    """(vote right, any voter right, voters, their tokens) for one subset of the branches."""
    answers = [item["branch_answers"][i] for i in chosen]
    logprobs = [item["branch_mean_logprobs"][i] for i in chosen]
    confidences = [item["branch_confidences"][i] if rule.reads_confidence else 0.0 for i in chosen]
    weights = [
        _weight(rule.weight, confidence, logprob) for confidence, logprob in zip(confidences, logprobs)
    ]

    def vote_of(voters: list[int]) -> VoteResult:
        return vote([answers[i] for i in voters], [weights[i] for i in voters], [logprobs[i] for i in voters])

    voters = list(range(len(chosen)))
    if rule.keep_top < 1.0:
        by = confidences if rule.rank == "confidence" else logprobs
        keep = max(1, math.ceil(rule.keep_top * len(chosen)))
        # sorted() is stable: on equal scores the earlier branch stays, as in the engine.
        voters = sorted(sorted(voters, key=lambda i: by[i], reverse=True)[:keep])
    if rule.stop == "none":
        result = vote_of(voters)
    else:
        for read in range(min(rule.warmup, len(voters)), len(voters) + 1):
            result = vote_of(voters[:read])
            answered = sum(answers[i] is not None for i in voters[:read])
            if vote_decided(result, answered, rule.stop, rule.consensus, _MIN_VOTES):
                break
        voters = voters[:read]
    right = [answers_equal(answers[i], item["gold"]) for i in voters]
    won = result.winner_index is not None and right[result.winner_index]
    tokens = sum(item["branch_tokens"][chosen[i]] for i in voters) if "branch_tokens" in item else 0
    return won, any(right), len(voters), tokens


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
    if rule.reads_confidence and not has_confidences([item]):
        raise _bad(
            f"rule {rule.label!r} needs branch confidences, which {strategy!r} did not record; run "
            "the strategy with vote=confidence (or keep_top < 1) to record them"
        )


def _bad(message: str) -> InvalidRequestError:
    return InvalidRequestError(message, param="rule")
