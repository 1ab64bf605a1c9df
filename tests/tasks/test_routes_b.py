"""Routes and checks of the boxes and word_problems solutions: varied, true and complete."""

from __future__ import annotations

import random
import re

import pytest

from ponder.tasks import DIFFICULTIES, generate
from ponder.tasks import boxes as boxes_module
from ponder.tasks import word_problems as word_problems_module
from ponder.tasks.item import TaskItem

FAMILY_MODULES = {"boxes": boxes_module, "word_problems": word_problems_module}
CELLS = [(family, difficulty) for family in FAMILY_MODULES for difficulty in DIFFICULTIES]
# Easy word problems without a purchase (two losses) have one route only: about 4 in 10.
# Easy word problems without a purchase have nothing to vary; the classic 3-box puzzle has one
# clue and the rules a fixed order, so it has one route.
MIN_SHARE_WITH_ROUTES = {"word_problems/easy": 0.45, "boxes/easy": 0.0}

_NUMERIC = re.compile(r"\d+(?: [-+*/] \d+)*")


def _work(item: TaskItem) -> str:
    return item.solution.split("\nResult: ")[0]


def _items_with_route_seed(
    family: str, difficulty: str, seed: int, monkeypatch: pytest.MonkeyPatch
) -> list[TaskItem]:
    """The usual 40 train items, their routes drawn from ``seed`` instead of the question."""
    monkeypatch.setattr(FAMILY_MODULES[family], "route_rng", lambda question: random.Random(seed))
    return generate(family, difficulty, 40, split="train")


@pytest.mark.parametrize(("family", "difficulty"), CELLS)
def test_questions_take_several_routes(family: str, difficulty: str, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = [_items_with_route_seed(family, difficulty, seed, monkeypatch) for seed in range(6)]
    assert all([i.question for i in run] == [i.question for i in runs[0]] for run in runs)
    routes_per_question = [len({_work(item) for item in same}) for same in zip(*runs, strict=True)]
    with_routes = sum(count >= 2 for count in routes_per_question) / len(routes_per_question)
    assert with_routes >= MIN_SHARE_WITH_ROUTES.get(f"{family}/{difficulty}", 0.9)


def test_real_route_draws_differ_between_questions() -> None:
    """route_rng(question) itself picks both two-person routes and both clue orders."""
    works = [_work(item) for item in generate("word_problems", "hard", 40, split="train")]
    by_person = sum(" alone: starts with " in work for work in works)
    assert 5 < by_person < 35
    in_question_order = 0
    for item in generate("boxes", "medium", 40, split="train"):
        asked = re.findall(r"(?:from box|Box) (\w) (?:is an?|does not)", item.question)
        solved = re.findall(r"Clue: (?:an? \w+ from (\w)|(\w) is not)", item.solution)
        in_question_order += asked == ["".join(pair) for pair in solved]
    assert 0 < in_question_order < 40


def _false_equalities(line: str) -> list[str]:
    """Every ``a op b ... = c`` (or ``= d r e``) in a line that Python does not confirm."""
    wrong = []
    segments = line.split(", ")
    for index, segment in enumerate(segments):
        if segment.startswith("+ ") and " = " in segment:  # "8 * 6 = 48, + 3 = 51": a carry added
            previous = int(segments[index - 1].rsplit(" = ", 1)[1])
            added, total = segment[2:].split(" = ")
            wrong += [] if previous + int(added) == int(total) else [line]
            continue
        parts = segment.split(" = ")
        if len(parts) < 2:
            continue
        left = _NUMERIC.findall(parts[0])[-1:]  # the expression right before "="
        if not left:
            continue
        value = eval(left[0])  # noqa: S307 - digits and operators only
        for right in parts[1:]:
            remainder = re.fullmatch(r"(\d+) r (\d+)", right)
            if remainder:
                dividend, divisor = map(int, left[0].split(" / "))
                ok = divmod(dividend, divisor) == tuple(map(int, remainder.groups()))
            else:
                ok = _NUMERIC.fullmatch(right) is not None and eval(right) == value  # noqa: S307
            wrong += [] if ok else [line]
    return wrong


def test_the_equality_parser_catches_slips() -> None:
    assert _false_equalities("8 * 6 = 48, + 3 = 51, write 51") == []
    assert _false_equalities("3 - 1 - 7, borrow: 12 - 7 = 5") == []
    assert _false_equalities("13 / 9 = 1 r 4") == []
    assert _false_equalities("7 * 12 = 12 * 7") == []
    assert _false_equalities("so 7 * 10 = 70") == []
    assert _false_equalities("8 + 6 = 15, write 5 carry 1")
    assert _false_equalities("13 / 9 = 1 r 3")
    assert _false_equalities("8 * 6 = 48, + 3 = 52, write 52")


@pytest.mark.parametrize(("family", "difficulty"), CELLS)
def test_every_equality_is_true_and_the_answer_is_stated(family: str, difficulty: str) -> None:
    for item in generate(family, difficulty, 40, split="train"):
        lines = item.solution.splitlines()
        assert [bad for line in lines for bad in _false_equalities(line)] == []
        assert f"Result: {item.answer}" in lines and "Check:" in lines
        assert lines[-1] == f"Answer: {item.answer}"


@pytest.mark.parametrize("difficulty", ["easy", "medium"])
def test_one_person_check_undoes_back_to_the_start(difficulty: str) -> None:
    for item in generate("word_problems", difficulty, 40, split="train"):
        start = re.match(r"\w+ has (\d+) ", item.question).group(1)
        back = re.search(r"Back to (\d+), the start: \w+ starts with (\d+)\.", item.solution)
        assert back.groups() == (start, start)


def _box_puzzle(item: TaskItem) -> tuple[list[str], dict[str, str], list, bool, dict[str, str]]:
    """The generator's inputs, read back from the question and the gold answer."""
    labels = dict(re.findall(r"Box (\w) is labelled (\w+)\.", item.question))
    classic = "Which box should you draw from?" in item.question
    if classic:
        box = item.answer.removeprefix("draw=")[0]
        fruit = re.search(r"If the fruit is an? (\w+),", item.question).group(1)
        clues = [boxes_module._Clue(box, fruit, is_draw=True)]
    else:
        found = re.findall(r"(?:from box (\w) is an? (\w+)|Box (\w) does not hold (\w+)s)\.", item.question)
        clues = [boxes_module._Clue(a or c, b or d, is_draw=bool(a)) for a, b, c, d in found]
    contents = dict(part.split("=") for part in item.answer.split(", ") if not part.startswith("draw="))
    return sorted(labels), labels, clues, classic, contents


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_every_boxes_route_ends_in_the_gold_assignment(difficulty: str) -> None:
    for item in generate("boxes", difficulty, 20, split="train"):
        boxes, labels, clues, classic, contents = _box_puzzle(item)
        for seed in range(15):
            work = boxes_module._work_lines(boxes, labels, clues, classic, contents, random.Random(seed))
            fixed = re.findall(r"^Only (?:option|place for \w+): (\w)=(\w+)$", "\n".join(work), re.M)
            assert dict(fixed) == contents and len(fixed) == len(contents)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_boxes_check_puts_the_answer_back_into_the_question(difficulty: str) -> None:
    for item in generate("boxes", difficulty, 20, split="train"):
        check = item.solution.split("\nCheck:\n")[1]
        for box, label, kind in re.findall(r"^(\w) \(label (\w+)\) = (\w+), ok$", check, re.M):
            assert kind != label and f"{box}={kind}" in item.answer
        clue_checks = re.findall(r"^(?:an? \w+ from \w|\w is not \w+): \w=\w+, ok$", check, re.M)
        clue_count = item.question.count("A fruit drawn") + item.question.count("does not hold")
        assert len(clue_checks) == max(clue_count, 1)
