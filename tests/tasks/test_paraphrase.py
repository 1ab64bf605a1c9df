"""Paraphrased questions: two disjoint template sets, gold answers kept, eval kept apart from training."""

import random
import re

import pytest

from ponder.errors import InvalidRequestError
from ponder.tasks import DIFFICULTIES, FAMILIES, generate, question_split, random_item
from ponder.tasks.paraphrase import (
    TEMPLATE_SETS,
    paraphrase_item,
    paraphrased_test_items,
    rephrase,
    small_arithmetic_item,
    templates,
)


@pytest.mark.parametrize("family", FAMILIES)
def test_template_sets_share_no_template(family):
    train, evaluation = (set(templates(family, name)) for name in TEMPLATE_SETS)
    assert train and evaluation and not train & evaluation


@pytest.mark.parametrize("family", FAMILIES)
def test_every_canonical_question_rephrases_and_keeps_its_answer(family):
    rng = random.Random(0)
    for difficulty in DIFFICULTIES:
        for item in generate(family, difficulty, 5, seed=2):
            for template_set in TEMPLATE_SETS:
                para = paraphrase_item(item, template_set, rng)
                assert para.answer == item.answer and para.solution == item.solution
                assert para.question != item.question or template_set == "train"


def test_eval_questions_never_appear_in_training_data():
    """Training draws train-split problems in train templates; the eval set is test-split
    problems in eval templates: no question is in both, and no eval problem is a train one."""
    rng = random.Random(1)
    trained = set()
    for _ in range(3000):
        family = rng.choice(FAMILIES)
        item = random_item(family, "easy", rng, split="train")
        trained.add(paraphrase_item(item, "train", rng).question)
        trained.add(small_arithmetic_item(rng, split="train").question)
        trained.add(item.question)
    evaluation = [item for family in FAMILIES for item in paraphrased_test_items(family, "easy", 24)]
    assert not trained & {item.question for item in evaluation}
    canonical = {item.question for family in FAMILIES for item in generate(family, "easy", 24)}
    assert all(question_split(question) == "test" for question in canonical)


def test_eval_set_is_deterministic_and_holds_plain_small_sums():
    first = paraphrased_test_items("arithmetic", "easy", 12, seed=3)
    assert [i.question for i in first] == [
        i.question for i in paraphrased_test_items("arithmetic", "easy", 12, seed=3)
    ]
    plain = first[1::2]
    assert all(max(map(int, _numbers(i.question))) <= 20 for i in plain)
    every = [i.question for i in paraphrased_test_items("arithmetic", "easy", 60)]
    assert any(re.search(r"\d[+-]\d", question) for question in every)  # "What is 2+3?"-like


def test_small_sums_are_right_and_respect_the_split():
    rng = random.Random(4)
    for split in ("train", "test"):
        for _ in range(30):
            item = small_arithmetic_item(rng, split=split)
            expression = item.question.removeprefix("What is ").removesuffix("?")
            assert str(eval(expression)) == item.answer  # noqa: S307 - our own generated digits
            assert question_split(item.question) == split
            assert item.solution.endswith(f"Answer: {item.answer}")


def test_bad_template_set_and_non_canonical_question_are_rejected():
    with pytest.raises(InvalidRequestError):
        rephrase("arithmetic", "What is 2 + 3?", "test", random.Random(0))
    with pytest.raises(InvalidRequestError):
        rephrase("equations", "What is 2 + 3?", "eval", random.Random(0))


def _numbers(text: str) -> list[str]:
    return re.findall(r"\d+", text)
