"""TaskItem: one generated problem with its gold answer, worked solution and checker."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ponder.tasks.answers import answers_equal, extract_answer

TEST_SPLIT_MODULUS = 10  # one question in ten (by hash) belongs to the test split


@dataclass(frozen=True)
class Problem:
    """What a family generator produces before it is stamped into a TaskItem."""

    question: str
    answer: str
    solution: str


@dataclass(frozen=True)
class TaskItem:
    family: str
    difficulty: str
    question: str
    answer: str  # canonical gold answer, compared with ponder.tasks.answers
    solution: str  # worked steps the model learns to write inside <think> … </think>
    id: str  # stable across runs and machines: a hash of family, difficulty and question

    def check(self, text_or_answer: str | None) -> bool:
        """Whether a model's full output (or a bare answer) matches the gold answer."""
        if text_or_answer is None:
            return False
        extracted = extract_answer(text_or_answer)
        candidate = extracted if extracted is not None else text_or_answer
        return answers_equal(candidate, self.answer)


def canonical_question(question: str) -> str:
    return " ".join(question.split()).lower()


def question_split(question: str) -> str:
    """ "test" or "train", decided only by the question, so the two splits can never overlap."""
    digest = hashlib.sha256(canonical_question(question).encode()).digest()
    return "test" if int.from_bytes(digest[:8], "big") % TEST_SPLIT_MODULUS == 0 else "train"


def item_id(family: str, difficulty: str, question: str) -> str:
    key = f"{family}|{difficulty}|{canonical_question(question)}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def make_item(family: str, difficulty: str, problem: Problem) -> TaskItem:
    return TaskItem(
        family=family,
        difficulty=difficulty,
        question=problem.question,
        answer=problem.answer,
        solution=problem.solution,
        id=item_id(family, difficulty, problem.question),
    )
