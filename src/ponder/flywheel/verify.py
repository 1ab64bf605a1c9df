"""TaskVerifier: checks a logged answer against the gold answer where the question is one of
ponder.tasks' generated items (the families have checkers; free-form traffic has none)."""

from __future__ import annotations

from collections.abc import Iterable

from ponder.errors import InvalidRequestError
from ponder.tasks import DIFFICULTIES, TaskItem, generate
from ponder.tasks.item import canonical_question
from ponder.tasks.registry import SPLITS, get_family


class TaskVerifier:
    def __init__(self, items: Iterable[TaskItem]):
        self._by_question = {canonical_question(item.question): item for item in items}

    @classmethod
    def for_families(cls, families: Iterable[str], pool: int = 2000, seed: int = 0) -> TaskVerifier:
        """The first `pool` items of every difficulty and split of each family, as
        `ponder.tasks.generate(..., seed=seed)` draws them (so traffic made from those lists is
        recognised)."""
        items: list[TaskItem] = []
        for family in families:
            get_family(family)  # an unknown name fails here, listing the valid ones
            for difficulty in DIFFICULTIES:
                for split in SPLITS:
                    items += _as_many_as_exist(family, difficulty, split, pool, seed)
        return cls(items)

    def __len__(self) -> int:
        return len(self._by_question)

    def item_for(self, question: str) -> TaskItem | None:
        return self._by_question.get(canonical_question(question))

    def check(self, question: str, answer: str | None) -> bool | None:
        """True or False when the question is a known item, None when there is no checker."""
        item = self.item_for(question)
        return None if item is None else item.check(answer)


def _as_many_as_exist(family: str, difficulty: str, split: str, n: int, seed: int) -> list[TaskItem]:
    while n > 0:  # a small family runs out of distinct questions: ask for fewer
        try:
            return generate(family, difficulty, n, split=split, seed=seed)
        except InvalidRequestError:
            n //= 2
    return []
