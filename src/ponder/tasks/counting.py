"""Counting: how many times given words appear in a list, tallied one item at a time.

Routes: walk the list from the first item or from the last; with two words, also count each
word on its own walk and add. The check counts again by a different route.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ponder.tasks.column_math import add_lines
from ponder.tasks.family import TaskFamily, checked_solution, route_rng
from ponder.tasks.item import Problem
from ponder.tasks.words import FRUITS


@dataclass(frozen=True)
class _Spec:
    min_items: int
    max_items: int
    num_kinds: int  # distinct words in the list
    num_targets: int  # words to count together


_SPECS = {
    "easy": _Spec(min_items=5, max_items=8, num_kinds=3, num_targets=1),
    "medium": _Spec(min_items=12, max_items=18, num_kinds=4, num_targets=1),
    "hard": _Spec(min_items=30, max_items=40, num_kinds=5, num_targets=2),
}


class CountingFamily(TaskFamily):
    name = "counting"
    description = "Count how often one or two words appear in a list of words."

    def make(self, difficulty: str, rng: random.Random) -> Problem:
        spec = _SPECS[difficulty]
        kinds = rng.sample(FRUITS, spec.num_kinds)
        targets = sorted(rng.sample(kinds, spec.num_targets))
        items = [rng.choice(kinds) for _ in range(rng.randint(spec.min_items, spec.max_items))]
        asked = " or ".join(targets)
        if len(targets) == 1:
            ask = f"How many times does {asked} appear?"
        else:
            ask = f"How many items are {asked}?"
        question = f"List: {', '.join(items)}. {ask}"
        count = sum(item in targets for item in items)
        routes = _ROUTES if len(targets) > 1 else _ROUTES[:2]
        work_route, check_route = route_rng(question).sample(routes, 2)
        work = work_route(items, targets)
        check = check_route(items, targets)
        return Problem(
            question=question, answer=str(count), solution=checked_solution(work, str(count), check)
        )


def _walk(items: list[str], targets: list[str], heading: str) -> list[str]:
    """One line per item: the item, whether it counts, the running count."""
    lines = [heading]
    count = 0
    for item in items:
        count += item in targets
        lines.append(f"{item} {'yes' if item in targets else 'no'} {count}")
    return lines


def _forward(items: list[str], targets: list[str]) -> list[str]:
    return _walk(items, targets, f"Count {' or '.join(targets)}, from the first item:")


def _backward(items: list[str], targets: list[str]) -> list[str]:
    return _walk(items[::-1], targets, f"Count {' or '.join(targets)}, from the last item:")


def _each_word(items: list[str], targets: list[str]) -> list[str]:
    """Count every word on its own walk, then add the counts."""
    lines: list[str] = []
    counts = []
    for target in targets:
        lines += _walk(items, [target], f"Count {target} alone:")
        counts.append(items.count(target))
        lines.append(f"{target}: {counts[-1]}")
    total = counts[0]
    for other in counts[1:]:
        lines += add_lines(total, other)
        total += other
    return lines


_ROUTES = (_forward, _backward, _each_word)
