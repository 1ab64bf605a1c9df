"""Each family's gold answers are right, checked independently of the generator's own logic."""

from __future__ import annotations

import itertools
import re
import statistics

import pytest

from ponder.tasks import DIFFICULTIES, FAMILIES, generate


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_arithmetic_answer_is_the_value_of_the_expression(difficulty: str) -> None:
    for item in generate("arithmetic", difficulty, 40, split="train"):
        expression = item.question.removeprefix("What is ").removesuffix("?")
        assert re.fullmatch(r"[\d+\-*() ]+", expression)
        assert eval(expression) == int(item.answer)  # noqa: S307 - digits and operators only


def test_arithmetic_hard_has_parentheses_and_products() -> None:
    questions = [item.question for item in generate("arithmetic", "hard", 50, split="train")]
    assert sum("(" in q for q in questions) > 10
    assert sum("*" in q for q in questions) > 25


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_equation_solution_satisfies_the_equation(difficulty: str) -> None:
    for item in generate("equations", difficulty, 40, split="train"):
        equation = item.question.removeprefix("Solve for x: ")
        python = re.sub(r"(\d)(x|\()", r"\1*\2", equation).replace("x", f"({item.answer})")
        left, right = python.split("=")
        assert eval(left) == eval(right), equation  # noqa: S307 - generated arithmetic


def _box_constraints(question: str) -> tuple[dict[str, str], list[tuple[str, str, bool]]]:
    labels = dict(re.findall(r"Box (\w) is labelled (\w+)\.", question))
    clues = [
        (box, fruit + "s", True)
        for box, fruit in re.findall(r"A fruit drawn from box (\w) is an? (\w+)\.", question)
    ]
    clues += [(box, kind, False) for box, kind in re.findall(r"Box (\w) does not hold (\w+)\.", question)]
    return labels, clues


@pytest.mark.parametrize("difficulty", ["medium", "hard"])
def test_boxes_answer_is_the_only_consistent_assignment(difficulty: str) -> None:
    for item in generate("boxes", difficulty, 15, split="train"):
        labels, clues = _box_constraints(item.question)
        boxes = sorted(labels)
        solutions = []
        for kinds in itertools.permutations(labels.values()):
            contents = dict(zip(boxes, kinds, strict=True))
            if any(contents[box] == labels[box] for box in boxes):
                continue
            if all((contents[b] in (k, "mixed")) if draw else contents[b] != k for b, k, draw in clues):
                solutions.append(contents)
        assert len(solutions) == 1
        expected = ", ".join(f"{box}={kind}" for box, kind in solutions[0].items())
        assert item.check(expected)


def test_boxes_easy_is_the_classic_puzzle() -> None:
    for item in generate("boxes", "easy", 20):
        labels, _ = _box_constraints(item.question)
        assert len(labels) == 3 and "mixed" in labels.values()
        mixed_box = next(box for box, label in labels.items() if label == "mixed")
        assert item.answer.startswith(f"draw={mixed_box}, ")
        fruit = re.search(r"If the fruit is an? (\w+),", item.question).group(1)
        assert f"{mixed_box}={fruit}s" in item.answer  # the drawn-from box holds that fruit


def _everyone_above(person: str, above: set[tuple[str, str]]) -> set[str]:
    found: set[str] = set()
    frontier = {person}
    while frontier:
        frontier = {a for a, b in above if b in frontier} - found
        found |= frontier
    return found


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_ordering_answer_follows_from_the_facts(difficulty: str) -> None:
    for item in generate("ordering", difficulty, 30, split="train"):
        facts = re.findall(r"(\w+) is (\w+) than (\w+)\.", item.question)
        more_words = {"taller", "older", "heavier", "faster"}
        above = {(a, b) if word in more_words else (b, a) for a, word, b in facts}
        people = {name for pair in above for name in pair}
        # With a chain of neighbouring facts, rank = number of people above (transitively).
        ranking = sorted(people, key=lambda person: len(_everyone_above(person, above)))
        match = re.search(r"Who is the (?:(\w+) )?(\w+)\?", item.question)
        ordinals = ["first", "second", "third", "fourth", "fifth"]
        position = ordinals.index(match.group(1)) + 1 if match.group(1) else 1
        from_top = match.group(2) in {"tallest", "oldest", "heaviest", "fastest"}
        expected = ranking[position - 1] if from_top else ranking[-position]
        assert item.answer == expected


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_counting_answer_is_the_count(difficulty: str) -> None:
    for item in generate("counting", difficulty, 30, split="train"):
        listed = re.search(r"List: (.*?)\. How", item.question).group(1).split(", ")
        asked = re.search(r"(?:does|are) (.+?)(?: appear)?\?", item.question).group(1)
        targets = asked.split(" or ")
        assert int(item.answer) == sum(word in targets for word in listed)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_word_problem_answers_are_natural_numbers(difficulty: str) -> None:
    for item in generate("word_problems", difficulty, 30, split="train"):
        assert int(item.answer) >= 0
        assert item.question.endswith("?")


@pytest.mark.parametrize("family", FAMILIES)
def test_harder_levels_have_longer_solutions(family: str) -> None:
    lengths = [
        statistics.mean(len(item.solution) for item in generate(family, level, 40, split="train"))
        for level in DIFFICULTIES
    ]
    assert lengths[0] < lengths[1] < lengths[2]


def test_question_vocabulary_is_small() -> None:
    words = set()
    for family in FAMILIES:
        for difficulty in DIFFICULTIES:
            for item in generate(family, difficulty, 40, split="train"):
                words |= set(re.findall(r"[A-Za-z]+", item.question + " " + item.solution))
    assert len(words) < 250
