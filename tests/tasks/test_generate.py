"""Generation: deterministic under a seed, train/test disjoint by hash, clear errors."""

from __future__ import annotations

import hashlib
import random

import pytest

from ponder.errors import InvalidRequestError
from ponder.tasks import DIFFICULTIES, FAMILIES, generate, get_family, question_split, random_item
from ponder.tasks.item import canonical_question

ALL_CELLS = [(family, difficulty) for family in FAMILIES for difficulty in DIFFICULTIES]


def test_at_least_six_families_and_three_difficulties() -> None:
    assert len(FAMILIES) >= 6
    assert DIFFICULTIES == ("easy", "medium", "hard")
    for family in FAMILIES:
        assert get_family(family).name == family


@pytest.mark.parametrize(("family", "difficulty"), ALL_CELLS)
def test_same_seed_same_items_other_seed_other_items(family: str, difficulty: str) -> None:
    first = generate(family, difficulty, 8, seed=3)
    assert first == generate(family, difficulty, 8, seed=3)
    assert [item.id for item in first] != [item.id for item in generate(family, difficulty, 8, seed=4)]


@pytest.mark.parametrize(("family", "difficulty"), ALL_CELLS)
def test_splits_are_disjoint_and_labelled_by_hash(family: str, difficulty: str) -> None:
    test_items = generate(family, difficulty, 20, split="test")
    train_items = generate(family, difficulty, 200, split="train")
    test_questions = {canonical_question(item.question) for item in test_items}
    train_questions = {canonical_question(item.question) for item in train_items}
    assert not test_questions & train_questions
    assert all(question_split(item.question) == "test" for item in test_items)
    assert all(question_split(item.question) == "train" for item in train_items)


@pytest.mark.parametrize(("family", "difficulty"), ALL_CELLS)
def test_items_are_distinct_and_well_formed(family: str, difficulty: str) -> None:
    items = generate(family, difficulty, 30, split="train", seed=1)
    assert len({item.id for item in items}) == 30
    for item in items:
        assert (item.family, item.difficulty) == (family, difficulty)
        assert item.question and item.answer and item.solution
        assert item.solution.splitlines()[-1] == f"Answer: {item.answer}"


def test_ids_are_stable_across_runs() -> None:
    # A fixed expectation, so a change to generation or hashing is noticed on purpose.
    items = generate("arithmetic", "easy", 2, seed=0)
    again = generate("arithmetic", "easy", 2, seed=0)
    assert [item.id for item in items] == [item.id for item in again]
    assert all(len(item.id) == 16 for item in items)


def test_random_item_respects_split() -> None:
    rng = random.Random(0)
    for family in FAMILIES:
        item = random_item(family, "easy", rng, split="test")
        assert question_split(item.question) == "test"


def test_test_split_is_about_a_tenth() -> None:
    rng = random.Random(5)
    family = get_family("arithmetic")
    splits = [question_split(family.make("medium", rng).question) for _ in range(2000)]
    assert 0.06 < splits.count("test") / len(splits) < 0.14


def test_unknown_family_lists_valid_ones() -> None:
    with pytest.raises(InvalidRequestError) as error:
        generate("poetry", "easy", 1)
    assert error.value.param == "family"
    for family in FAMILIES:
        assert family in str(error.value)


def test_unknown_difficulty_lists_valid_ones() -> None:
    with pytest.raises(InvalidRequestError) as error:
        generate("arithmetic", "extreme", 1)
    assert error.value.param == "difficulty"
    assert "easy, medium, hard" in str(error.value)


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_bad_count_is_rejected(bad) -> None:
    with pytest.raises(InvalidRequestError):
        generate("arithmetic", "easy", bad)


def test_unknown_split_is_rejected() -> None:
    with pytest.raises(InvalidRequestError) as error:
        generate("arithmetic", "easy", 1, split="dev")
    assert "train, test" in str(error.value)


def test_zero_items() -> None:
    assert generate("counting", "hard", 0) == []


# Digests of (question, answer) for 5 test and 5 train items per cell, recorded before the
# worked solutions gained routes and checks: solutions may change, the questions may not, so
# evaluation sets (and every figure measured on them) stay comparable.
_QUESTION_DIGESTS = {
    "arithmetic/easy": "6f506df2d2496d90",
    "arithmetic/medium": "cbc441aada6fbbeb",
    "arithmetic/hard": "bb1590917c30e9fc",
    "boxes/easy": "ea6d29a0f356df8e",
    "boxes/medium": "2ce7cb0309685c75",
    "boxes/hard": "8642f919742194fa",
    "ordering/easy": "c6239a76a785407c",
    "ordering/medium": "9fad5642f43ab708",
    "ordering/hard": "3fef0a01317e7ec6",
    "counting/easy": "041ab3713c72f608",
    "counting/medium": "5379f40f1a446a8f",
    "counting/hard": "938627fccb4d223f",
    "equations/easy": "7388b4eb0d88bdd1",
    "equations/medium": "299f713e2440c4b7",
    "equations/hard": "ed09431a59e8c7fe",
    "word_problems/easy": "97cfed0da40c7a88",
    "word_problems/medium": "cfe8c96f32d3ac39",
    "word_problems/hard": "2976fce6fa78b884",
}


@pytest.mark.parametrize(("family", "difficulty"), ALL_CELLS)
def test_questions_and_answers_never_change(family: str, difficulty: str) -> None:
    items = generate(family, difficulty, 5, split="test", seed=0)
    items += generate(family, difficulty, 5, split="train", seed=3)
    text = "|".join(f"{item.question}={item.answer}" for item in items)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    assert digest == _QUESTION_DIGESTS[f"{family}/{difficulty}"]
