"""TaskFamily: the contract every generator of one kind of problem fulfils."""

from __future__ import annotations

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
