"""Short word problems: people buy, give, lose and share fruit; how many are there at the end?"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ponder.tasks.column_math import add_lines, divide_lines, multiply_lines, subtract_lines
from ponder.tasks.family import TaskFamily, final_line
from ponder.tasks.item import Problem
from ponder.tasks.words import FRUITS, NAMES, plural


@dataclass(frozen=True)
class _Spec:
    num_people: int
    min_events: int
    max_events: int
    event_kinds: tuple[str, ...]
    max_start: int
    max_amount: int


_SPECS = {
    "easy": _Spec(1, 2, 2, ("buy", "lose", "give"), max_start=50, max_amount=30),
    "medium": _Spec(1, 3, 3, ("buy", "lose", "give", "bags", "share"), 99, 60),
    "hard": _Spec(2, 4, 5, ("buy", "lose", "give", "bags", "share"), 99, 99),
}


class WordProblemsFamily(TaskFamily):
    name = "word_problems"
    description = "Short stories of buying, giving, losing and sharing fruit; count what is left."

    def make(self, difficulty: str, rng: random.Random) -> Problem:
        spec = _SPECS[difficulty]
        while True:
            problem = _try_make(spec, rng)
            if problem is not None:
                return problem


def _try_make(spec: _Spec, rng: random.Random) -> Problem | None:
    people = rng.sample(NAMES, spec.num_people + (1 if spec.num_people == 1 else 0))
    actors = people[: spec.num_people]
    fruit = plural(rng.choice(FRUITS))
    counts = {person: rng.randint(5, spec.max_start) for person in actors}
    sentences = [f"{person} has {counts[person]} {fruit}." for person in actors]
    lines = [f"{person} starts with {counts[person]}." for person in actors]
    for _ in range(rng.randint(spec.min_events, spec.max_events)):
        actor = rng.choice(actors)
        receiver = next(p for p in people if p != actor)
        event = _event(rng.choice(spec.event_kinds), actor, receiver, fruit, counts, spec, rng)
        if event is None:
            return None
        sentence, event_lines = event
        sentences.append(sentence)
        lines += event_lines
        lines.append(", ".join(f"{person} has {counts[person]}" for person in actors) + ".")
    if len(actors) == 2 and rng.random() < 0.5:
        first, second = actors
        ask = f"How many {fruit} do {first} and {second} have together?"
        lines.append(f"Together: {counts[first]} + {counts[second]}")
        lines += add_lines(counts[first], counts[second])
        answer = counts[first] + counts[second]
    else:
        asked = rng.choice(actors)
        ask = f"How many {fruit} does {asked} have now?"
        answer = counts[asked]
    lines.append(final_line(str(answer)))
    return Problem(
        question=" ".join([*sentences, ask]), answer=str(answer), solution="\n".join(lines)
    )


def _event(
    kind: str,
    actor: str,
    receiver: str,
    fruit: str,
    counts: dict[str, int],
    spec: _Spec,
    rng: random.Random,
) -> tuple[str, list[str]] | None:
    """One story sentence and its worked lines; updates ``counts``. None if it cannot happen."""
    have = counts[actor]
    if kind == "buy":
        amount = rng.randint(2, spec.max_amount)
        counts[actor] = have + amount
        lines = [f"{actor}: {have} + {amount}", *add_lines(have, amount)]
        return f"{actor} buys {amount} more {fruit}.", lines
    if kind in ("lose", "give"):
        if have < 2:
            return None
        amount = rng.randint(1, min(have - 1, spec.max_amount))
        counts[actor] = have - amount
        lines = [f"{actor}: {have} - {amount}", *subtract_lines(have, amount)]
        if kind == "lose":
            return f"{actor} loses {amount} {fruit}.", lines
        sentence = f"{actor} gives {amount} {fruit} to {receiver}."
        if receiver in counts:
            before = counts[receiver]
            counts[receiver] = before + amount
            lines += [f"{receiver}: {before} + {amount}", *add_lines(before, amount)]
        return sentence, lines
    if kind == "bags":
        bags, per_bag = rng.randint(2, 9), rng.randint(2, 12)
        counts[actor] = have + bags * per_bag
        lines = [f"{actor} gets {bags} * {per_bag}", *multiply_lines(bags, per_bag)]
        lines += [f"{actor}: {have} + {bags * per_bag}", *add_lines(have, bags * per_bag)]
        return f"{actor} buys {bags} bags with {per_bag} {fruit} in each bag.", lines
    divisors = [d for d in range(2, 10) if have % d == 0 and have // d >= 1]
    if not divisors:
        return None
    groups = rng.choice(divisors)
    counts[actor] = have // groups
    sentence = f"{actor} splits the {fruit} into {groups} equal groups and keeps one group."
    return sentence, [f"{actor}: {have} / {groups}", *divide_lines(have, groups)]
