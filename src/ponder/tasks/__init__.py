"""Built-in verifiable reasoning tasks: generators with gold answers, worked solutions, checkers."""

from ponder.tasks.family import DIFFICULTIES, TaskFamily
from ponder.tasks.item import TaskItem, question_split
from ponder.tasks.registry import FAMILIES, SPLITS, generate, get_family, random_item

__all__ = [
    "DIFFICULTIES",
    "FAMILIES",
    "SPLITS",
    "TaskFamily",
    "TaskItem",
    "generate",
    "get_family",
    "question_split",
    "random_item",
]
