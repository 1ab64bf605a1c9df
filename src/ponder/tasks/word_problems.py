"""Short word problems: people buy, give, lose and share fruit; how many are there at the end?

Routes: each sum may be written either way round ("31 + 8" or "8 + 31") and a bag purchase is
multiplied out before or after the sum is stated. With two people the story is followed event
by event (both counts after each event) or person by person (each asked person through the
events that touch them; amounts are fixed numbers, so one count never depends on the other).
The check takes the other route for two people; for one person it undoes the events backwards
from the result and must arrive at the start amount.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ponder.tasks.column_math import add_lines, divide_lines, multiply_lines, subtract_lines
from ponder.tasks.family import TaskFamily, checked_solution, route_rng
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


@dataclass(frozen=True)
class _Event:
    kind: str  # buy, lose, give, bags or share
    actor: str
    receiver: str  # who is given to; only used by "give"
    amount: int  # fruit bought, lost or given; bags bought; groups shared into
    per_bag: int = 0

    def sentence(self, fruit: str) -> str:
        if self.kind == "buy":
            return f"{self.actor} buys {self.amount} more {fruit}."
        if self.kind == "lose":
            return f"{self.actor} loses {self.amount} {fruit}."
        if self.kind == "give":
            return f"{self.actor} gives {self.amount} {fruit} to {self.receiver}."
        if self.kind == "bags":
            return f"{self.actor} buys {self.amount} bags with {self.per_bag} {fruit} in each bag."
        return f"{self.actor} splits the {fruit} into {self.amount} equal groups and keeps one group."

    def touches(self, person: str) -> bool:
        return person == self.actor or (self.kind == "give" and person == self.receiver)

    def after(self, person: str, have: int) -> int:
        """``person``'s count after this event, from ``have`` before it."""
        if person != self.actor:
            return have + self.amount if self.touches(person) else have
        if self.kind == "buy":
            return have + self.amount
        if self.kind == "bags":
            return have + self.amount * self.per_bag
        if self.kind == "share":
            return have // self.amount
        return have - self.amount


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
    starts = {person: rng.randint(5, spec.max_start) for person in actors}
    counts = dict(starts)
    events = []
    for _ in range(rng.randint(spec.min_events, spec.max_events)):
        actor = rng.choice(actors)
        receiver = next(p for p in people if p != actor)
        event = _draw_event(rng.choice(spec.event_kinds), actor, receiver, counts[actor], spec, rng)
        if event is None:
            return None
        events.append(event)
        counts = {person: event.after(person, have) for person, have in counts.items()}
    if len(actors) == 2 and rng.random() < 0.5:
        asked = actors
        ask = f"How many {fruit} do {actors[0]} and {actors[1]} have together?"
    else:
        asked = [rng.choice(actors)]
        ask = f"How many {fruit} does {asked[0]} have now?"
    answer = str(sum(counts[person] for person in asked))
    sentences = [f"{person} has {starts[person]} {fruit}." for person in actors]
    question = " ".join([*sentences, *(event.sentence(fruit) for event in events), ask])
    work, check = _routes(starts, events, asked, route_rng(question))
    return Problem(question=question, answer=answer, solution=checked_solution(work, answer, check))


def _draw_event(
    kind: str, actor: str, receiver: str, have: int, spec: _Spec, rng: random.Random
) -> _Event | None:
    """One random event that ``actor`` (holding ``have``) can do; None if it cannot happen."""
    if kind == "buy":
        return _Event(kind, actor, receiver, rng.randint(2, spec.max_amount))
    if kind in ("lose", "give"):
        if have < 2:
            return None
        return _Event(kind, actor, receiver, rng.randint(1, min(have - 1, spec.max_amount)))
    if kind == "bags":
        bags, per_bag = rng.randint(2, 9), rng.randint(2, 12)
        return _Event(kind, actor, receiver, bags, per_bag)
    divisors = [d for d in range(2, 10) if have % d == 0 and have // d >= 1]
    if not divisors:
        return None
    return _Event(kind, actor, receiver, rng.choice(divisors))


def _routes(
    starts: dict[str, int], events: list[_Event], asked: list[str], rng: random.Random
) -> tuple[list[str], list[str]]:
    """The work by one route and the check by another."""
    if len(starts) == 1:
        return _by_event(starts, events, asked, rng), _undo_lines(starts, events)
    by_event_first = rng.random() < 0.5
    by_event = _by_event(starts, events, asked, rng, is_check=not by_event_first)
    by_person = _by_person(starts, events, asked, rng, is_check=by_event_first)
    return (by_event, by_person) if by_event_first else (by_person, by_event)


def _by_event(
    starts: dict[str, int],
    events: list[_Event],
    asked: list[str],
    rng: random.Random,
    is_check: bool = False,
) -> list[str]:
    """Walk the story in order, writing the new count of everyone each event touches.

    As a check (``is_check``) it leaves out the restated counts, to keep within the length
    budget, and adds up "together" the other way round.
    """
    counts = dict(starts)
    lines = [f"{person} starts with {have}." for person, have in counts.items()]
    for event in events:
        touched = [p for p in (event.actor, event.receiver) if p in counts and event.touches(p)]
        for person in touched:
            lines += _step_lines(event, person, counts[person], rng)
            counts[person] = event.after(person, counts[person])
        if not is_check:
            lines.append(", ".join(f"{person} has {counts[person]}" for person in touched) + ".")
    return lines + _together_lines(counts, asked, is_check)


def _by_person(
    starts: dict[str, int],
    events: list[_Event],
    asked: list[str],
    rng: random.Random,
    is_check: bool = False,
) -> list[str]:
    """Follow each asked person alone through the events that touch them (as ``_by_event``)."""
    counts = {}
    lines = []
    for person in asked:
        have = starts[person]
        lines.append(f"{person} alone: starts with {have}.")
        for event in events:
            if event.touches(person):
                lines += _step_lines(event, person, have, rng)
                have = event.after(person, have)
                if not is_check:
                    lines.append(f"{person} has {have}.")
        counts[person] = have
    return lines + _together_lines(counts, asked, is_check)


def _together_lines(counts: dict[str, int], asked: list[str], reverse: bool) -> list[str]:
    if len(asked) == 1:
        return []
    first, second = (counts[person] for person in (asked[::-1] if reverse else asked))
    return [f"Together: {first} + {second}", *add_lines(first, second)]


def _step_lines(event: _Event, person: str, have: int, rng: random.Random) -> list[str]:
    """The worked arithmetic of one event for ``person``; sums go either way round."""
    if person != event.actor or event.kind == "buy":
        return _sum_lines(person, have, event.amount, rng)
    if event.kind in ("lose", "give"):
        return [f"{person}: {have} - {event.amount}", *subtract_lines(have, event.amount)]
    if event.kind == "share":
        return [f"{person}: {have} / {event.amount}", *divide_lines(have, event.amount)]
    bags, per_bag = event.amount, event.per_bag
    product = multiply_lines(bags, per_bag)
    if rng.random() < 0.5:  # multiply out first, then state and work the sum
        head = f"{person} gets {bags} * {per_bag}"
        return [head, *product, *_sum_lines(person, have, bags * per_bag, rng)]
    # Or state the sum with the product still in it, work out the product, then the sum.
    terms, numbers = [str(have), f"{bags} * {per_bag}"], [have, bags * per_bag]
    if rng.random() < 0.5:
        terms, numbers = terms[::-1], numbers[::-1]
    return [f"{person}: {terms[0]} + {terms[1]}", *product, *add_lines(*numbers)]


def _sum_lines(person: str, have: int, amount: int, rng: random.Random) -> list[str]:
    """``have + amount`` or ``amount + have`` (drawn at random), in column math."""
    left, right = (have, amount) if rng.random() < 0.5 else (amount, have)
    return [f"{person}: {left} + {right}", *add_lines(left, right)]


def _undo_lines(starts: dict[str, int], events: list[_Event]) -> list[str]:
    """One person's events undone from the last to the first, ending at the start amount."""
    ((person, start),) = starts.items()
    have = start
    for event in events:
        have = event.after(person, have)
    lines = [f"Undo from {have}, last event first."]
    for event in reversed(events):
        have, step = _undo_step(event, have)
        lines += step
    return [*lines, f"Back to {have}, the start: {person} starts with {start}."]


def _undo_step(event: _Event, have: int) -> tuple[int, list[str]]:
    """The count before ``event`` (of its actor) from ``have`` after it, with the work."""
    amount = event.amount
    if event.kind == "buy":
        return have - amount, [f"Undo buys {amount}: {have} - {amount}", *subtract_lines(have, amount)]
    if event.kind in ("lose", "give"):
        words = "loses" if event.kind == "lose" else "gives"
        return have + amount, [f"Undo {words} {amount}: {have} + {amount}", *add_lines(have, amount)]
    if event.kind == "share":
        head = f"Undo keeps one of {amount} groups: {have} * {amount}"
        return have * amount, [head, *multiply_lines(have, amount)]
    # The bag product is found again the other way round, so a slip in it shows up.
    product = amount * event.per_bag
    head = f"Undo buys {amount} bags: {have} - {event.per_bag} * {amount}"
    lines = [head, *multiply_lines(event.per_bag, amount), *subtract_lines(have, product)]
    return have - product, lines
