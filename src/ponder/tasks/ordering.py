"""Ordering logic: comparisons between people ("Ann is taller than Bob"); who is k-th?

Solved mechanically: rewrite every fact as "more > less", find the one person never on the
right (the top), follow the chain down, then count to the asked position.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ponder.tasks.family import TaskFamily, final_line
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
        lines = _solution_lines(people, facts, attribute, from_top, position, answer)
        return Problem(question=question, answer=answer, solution="\n".join(lines))


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


def _solution_lines(
    people: list[str],
    facts: list[tuple[str, str, bool]],
    attribute: _Attribute,
    from_top: bool,
    position: int,
    answer: str,
) -> list[str]:
    lines = [f"Write each fact as {attribute.more} > {attribute.less}:"]
    # Copy each fact before rewriting it: one short step at a time is easy to learn.
    for more, less, says_more in facts:
        lines.append(f"{_sentence(more, less, says_more, attribute)[:-1]}: {more} > {less}")
    lines.append(f"Never on the right: {people[0]}, the {attribute.most}.")
    lines += [f"{people[i]} > {people[i + 1]}" for i in range(len(people) - 1)]
    lines.append(f"From {attribute.most} to {attribute.least}: {', '.join(people)}")
    ranked = people if from_top else list(reversed(people))
    end = attribute.most if from_top else attribute.least
    counted = ", ".join(f"{index} {name}" for index, name in enumerate(ranked[:position], 1))
    lines.append(f"Count from the {end}: {counted}")
    lines.append(final_line(answer))
    return lines
