"""Ordering logic: comparisons between people ("Ann is taller than Bob"); who is k-th?

Solved mechanically: rewrite every fact as "more > less", then build the order from the top
(the one person never on the right, following the chain down) or from the bottom (the one never
on the left, following it up), and count to the asked position. The check counts to the same
person from the other end.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ponder.tasks.family import TaskFamily, checked_solution, route_rng
from ponder.tasks.item import Problem
from ponder.tasks.words import NAMES, ORDINALS


@dataclass(frozen=True)
class _Attribute:
    more: str  # "taller"
    less: str  # "shorter"
    most: str  # "tallest"
    least: str  # "shortest"


_ATTRIBUTES = (
    _Attribute("taller", "shorter", "tallest", "shortest"),
    _Attribute("older", "younger", "oldest", "youngest"),
    _Attribute("heavier", "lighter", "heaviest", "lightest"),
    _Attribute("faster", "slower", "fastest", "slowest"),
)
_SIZES = {"easy": (3, 3), "medium": (4, 6), "hard": (8, 10)}
_MAX_HARD_POSITION = 5  # k-th from either end, k up to this


class OrderingFamily(TaskFamily):
    name = "ordering"
    description = "Chains of comparisons between people; find who is k-th tallest, oldest, ..."

    def make(self, difficulty: str, rng: random.Random) -> Problem:
        low, high = _SIZES[difficulty]
        people = rng.sample(NAMES, rng.randint(low, high))  # people[0] has the most
        attribute = rng.choice(_ATTRIBUTES)
        facts = _facts(people, rng)
        from_top = rng.random() < 0.5
        position = _position(difficulty, len(people), rng)
        answer = people[position - 1] if from_top else people[-position]
        question_word = attribute.most if from_top else attribute.least
        ordinal = "" if position == 1 else ORDINALS[position - 1] + " "
        sentences = [_sentence(more, less, says_more, attribute) for more, less, says_more in facts]
        question = " ".join(sentences) + f" Who is the {ordinal}{question_word}?"
        from_top_first = route_rng(question).random() < 0.5
        work = _order_lines(people, facts, attribute, from_top_first)
        work.append(_count_line(people, attribute, from_top, position))
        check = _check_lines(people, attribute, from_top_first, from_top, position)
        return Problem(question=question, answer=answer, solution=checked_solution(work, answer, check))


def _facts(people: list[str], rng: random.Random) -> list[tuple[str, str, bool]]:
    """Neighbouring pairs (more, less, phrased-with-"more"), shuffled."""
    facts = [(people[i], people[i + 1], rng.random() < 0.5) for i in range(len(people) - 1)]
    rng.shuffle(facts)
    return facts


def _position(difficulty: str, size: int, rng: random.Random) -> int:
    if difficulty == "easy":
        return 1
    if difficulty == "medium":
        return rng.randint(1, 2)
    return rng.randint(1, min(size - 1, _MAX_HARD_POSITION))


def _sentence(more: str, less: str, says_more: bool, attribute: _Attribute) -> str:
    if says_more:
        return f"{more} is {attribute.more} than {less}."
    return f"{less} is {attribute.less} than {more}."


def _order_lines(
    people: list[str],
    facts: list[tuple[str, str, bool]],
    attribute: _Attribute,
    from_top: bool,
) -> list[str]:
    """Copy and rewrite each fact, then follow the chain from one end to the full order."""
    lines = [f"Write each fact as {attribute.more} > {attribute.less}:"]
    # Copy each fact before rewriting it: one short step at a time is easy to learn.
    for more, less, says_more in facts:
        lines.append(f"{_sentence(more, less, says_more, attribute)[:-1]}: {more} > {less}")
    return lines + _chain_lines(people, attribute, from_top)


def _chain_lines(people: list[str], attribute: _Attribute, from_top: bool) -> list[str]:
    """The full order, found from the top (never on the right) or the bottom (never on the left)."""
    lines = []
    if from_top:
        lines.append(f"Never on the right: {people[0]}, the {attribute.most}.")
        lines += [f"{people[i]} > {people[i + 1]}" for i in range(len(people) - 1)]
        lines.append(f"From {attribute.most} to {attribute.least}: {', '.join(people)}")
    else:
        lines.append(f"Never on the left: {people[-1]}, the {attribute.least}.")
        lines += [f"{people[i - 1]} > {people[i]}" for i in range(len(people) - 1, 0, -1)]
        lines.append(f"From {attribute.least} to {attribute.most}: {', '.join(reversed(people))}")
    return lines


def _count_line(people: list[str], attribute: _Attribute, from_top: bool, position: int) -> str:
    ranked = people if from_top else people[::-1]
    end = attribute.most if from_top else attribute.least
    counted = ", ".join(f"{index} {name}" for index, name in enumerate(ranked[:position], 1))
    return f"Count from the {end}: {counted}"


def _check_lines(
    people: list[str], attribute: _Attribute, from_top_first: bool, from_top: bool, position: int
) -> list[str]:
    """The order found again from the other end, and the same person counted from that end."""
    size = len(people)
    other = size + 1 - position
    return [
        *_chain_lines(people, attribute, not from_top_first),
        f"{size} people, so {position} from one end is {size} + 1 - {position} = {other} from the other.",
        _count_line(people, attribute, not from_top, other),
    ]
