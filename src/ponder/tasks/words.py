"""The small shared vocabulary of the task questions (names, fruits, ordinals)."""

from __future__ import annotations

NAMES: tuple[str, ...] = (
    "Ann",
    "Bob",
    "Cal",
    "Dan",
    "Eve",
    "Fay",
    "Gus",
    "Hal",
    "Ivy",
    "Jon",
    "Kim",
    "Lea",
)
FRUITS: tuple[str, ...] = ("apple", "pear", "plum", "fig", "lime", "kiwi", "lemon", "melon")
ORDINALS: tuple[str, ...] = (
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
)
NUMBER_WORDS: tuple[str, ...] = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
)


def plural(fruit: str) -> str:
    return fruit + "s"


def join_with_and(words: list[str]) -> str:
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " and " + words[-1]
