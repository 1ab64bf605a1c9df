"""The task families by name, and deterministic generation of train/test items."""

from __future__ import annotations

import random

from ponder.errors import InvalidRequestError
from ponder.tasks.arithmetic import ArithmeticFamily
from ponder.tasks.boxes import BoxesFamily
from ponder.tasks.counting import CountingFamily
from ponder.tasks.equations import EquationsFamily
from ponder.tasks.family import DIFFICULTIES, TaskFamily
from ponder.tasks.item import TaskItem, make_item, question_split
from ponder.tasks.ordering import OrderingFamily
from ponder.tasks.word_problems import WordProblemsFamily

SPLITS: tuple[str, ...] = ("train", "test")

_FAMILIES: dict[str, TaskFamily] = {
    family.name: family
    for family in (
        ArithmeticFamily(),
        BoxesFamily(),
        OrderingFamily(),
        CountingFamily(),
        EquationsFamily(),
        WordProblemsFamily(),
    )
}
FAMILIES: tuple[str, ...] = tuple(_FAMILIES)

# Drawing a test item takes about ten tries (one question in ten is test), plus duplicates.
_ATTEMPTS_PER_ITEM = 100


def get_family(name: str) -> TaskFamily:
    """The family called ``name``; unknown names raise InvalidRequestError listing valid ones."""
    family = _FAMILIES.get(name)
    if family is None:
        raise InvalidRequestError(
            f"unknown task family {name!r}; valid families: {', '.join(FAMILIES)}", param="family"
        )
    return family


def check_difficulty(difficulty: str) -> str:
    if difficulty not in DIFFICULTIES:
        raise InvalidRequestError(
            f"unknown difficulty {difficulty!r}; valid difficulties: {', '.join(DIFFICULTIES)}",
            param="difficulty",
        )
    return difficulty


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise InvalidRequestError(
            f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}", param="split"
        )
    return split


def random_item(family: str, difficulty: str, rng: random.Random, *, split: str) -> TaskItem:
    """One random item of ``split`` drawn with ``rng`` (duplicates possible); for training."""
    task_family = get_family(family)
    check_difficulty(difficulty)
    check_split(split)
    while True:
        problem = task_family.make(difficulty, rng)
        if question_split(problem.question) == split:
            return make_item(family, difficulty, problem)


def generate(family: str, difficulty: str, n: int, *, split: str = "test", seed: int = 0) -> list[TaskItem]:
    """``n`` distinct items of one family and difficulty; the same arguments give the same items."""
    task_family = get_family(family)
    check_difficulty(difficulty)
    check_split(split)
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise InvalidRequestError(f"n must be a non-negative integer, got {n!r}", param="n")
    rng = random.Random(f"ponder.tasks|{family}|{difficulty}|{split}|{seed}")
    items: list[TaskItem] = []
    seen: set[str] = set()
    for _ in range(_ATTEMPTS_PER_ITEM * n):
        if len(items) == n:
            break
        problem = task_family.make(difficulty, rng)
        if question_split(problem.question) != split:
            continue
        item = make_item(family, difficulty, problem)
        if item.id not in seen:
            seen.add(item.id)
            items.append(item)
    if len(items) < n:
        raise InvalidRequestError(
            f"found only {len(items)} distinct {split} items for {family}/{difficulty}; "
            f"ask for at most {len(items)}",
            param="n",
        )
    return items
