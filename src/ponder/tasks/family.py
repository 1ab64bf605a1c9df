"""TaskFamily: the contract every generator of one kind of problem fulfils.

A worked solution is written the way a reasoning model thinks: it solves the problem by one of
several routes (drawn at random), states the result, then checks it by another route before the
final line. The routes make sampled thoughts differ in their steps, so their mistakes differ
too and voting has something to gain (self-consistency); the check is thinking that goes on
after the answer is known, which answer-stability probing (Dynasor) can cut short.
"""

from __future__ import annotations

import hashlib
import random
from abc import ABC, abstractmethod
from typing import ClassVar

from ponder.tasks.item import Problem

DIFFICULTIES: tuple[str, ...] = ("easy", "medium", "hard")


class TaskFamily(ABC):
    """Generates problems of one kind; ``make`` must use only ``rng`` for randomness."""

    name: ClassVar[str]
    description: ClassVar[str]

    @abstractmethod
    def make(self, difficulty: str, rng: random.Random) -> Problem:
        """One random problem of ``difficulty`` (already validated to be in DIFFICULTIES)."""


def final_line(answer: str) -> str:
    """The closing line of every worked solution, so the answer step looks the same everywhere."""
    return f"Answer: {answer}"


def route_rng(question: str) -> random.Random:
    """The randomness that picks a solution's routes, derived from the question alone.

    Drawing routes from the family's ``rng`` would shift every later draw and change which
    questions a seed generates; this keeps the questions (and the test split) as they were.
    """
    digest = hashlib.sha256(question.encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def checked_solution(work: list[str], answer: str, check: list[str]) -> str:
    """Solution text: the work, its result, a check of it by another route, the final line."""
    return "\n".join(
        [*work, f"Result: {answer}", "Check:", *check, f"Check gives {answer} too.", final_line(answer)]
    )
