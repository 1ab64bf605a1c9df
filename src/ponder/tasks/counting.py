"""Counting: how many times given words appear in a list, tallied one item at a time."""

from __future__ import annotations

import random
from dataclasses import dataclass

from ponder.tasks.family import TaskFamily, final_line
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
        lines = [f"Count {asked}:"]
        count = 0
        for item in items:
            if item in targets:
                count += 1
                lines.append(f"{item} yes {count}")
            else:
                lines.append(f"{item} no {count}")
        lines.append(final_line(str(count)))
        return Problem(question=question, answer=str(count), solution="\n".join(lines))
