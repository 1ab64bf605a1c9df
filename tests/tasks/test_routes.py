"""Worked solutions take random routes and end with a check that recomputes the answer."""

from __future__ import annotations

import ast
import re

import pytest

from ponder.tasks import DIFFICULTIES, TaskItem, generate
from tests.tasks.test_column_math import _assert_steps_true

_ONE_LINE_FACT = re.compile(r"(\d+) ([-+*]) (\d+) = (\d+)")


def _items(family: str, difficulty: str) -> list[TaskItem]:
    return generate(family, difficulty, 40, split="train", seed=7)


def _work_and_check(item: TaskItem) -> tuple[list[str], list[str]]:
    work, check = item.solution.split(f"\nResult: {item.answer}\nCheck:\n")
    assert check.endswith(f"\nCheck gives {item.answer} too.\nAnswer: {item.answer}")
    return work.splitlines(), check.splitlines()[:-2]


def _assert_facts_true(lines: list[str]) -> None:
    """Every "a op b = c" in the lines holds, negative numbers written "(-5)" included.

    Lines naming x are skipped: "9x + 18 - 102 = 4x" is an equation, not a fact.
    """
    facts = [line for line in lines if not re.search(r"\bx\b|\dx", line)]
    _assert_steps_true([re.sub(r"\((-\d+)\)", r"\1", line) for line in facts])


@pytest.mark.parametrize("family", ["arithmetic", "equations"])
@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_solution_states_result_checks_it_and_answers(family: str, difficulty: str) -> None:
    for item in _items(family, difficulty):
        work, check = _work_and_check(item)
        assert check
        _assert_facts_true(work + check)


def _ready_operations(expression: str) -> list[tuple[int, str, int]]:
    """Operations whose operands are both numbers, leftmost first."""
    symbols = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*"}
    ready = []

    def visit(node: ast.expr) -> None:
        if isinstance(node, ast.BinOp):
            if isinstance(node.left, ast.Constant) and isinstance(node.right, ast.Constant):
                ready.append((node.left.value, symbols[type(node.op)], node.right.value))
            else:
                visit(node.left)
                visit(node.right)

    visit(ast.parse(expression, mode="eval").body)
    return ready


def _arithmetic_route(item: TaskItem) -> tuple[str, ...]:
    """Per step: "leftmost", "other" (another ready operation) or "swapped" (b + a)."""
    work, _ = _work_and_check(item)
    expression, route = work[0], []
    for line in work[1:]:
        if line.startswith("Now: "):
            expression = line.removeprefix("Now: ")
            assert eval(expression) == int(item.answer)  # noqa: S307 - digits and operators only
        elif line.startswith("Next: "):
            left, op, right = line.removeprefix("Next: ").split()
            step, ready = (int(left), op, int(right)), _ready_operations(expression)
            if step == ready[0]:
                route.append("leftmost")
            elif step in ready:
                route.append("other")
            else:
                assert op == "+" and (int(right), op, int(left)) in ready, (expression, line)
                route.append("swapped")
    return tuple(route)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_arithmetic_takes_several_routes(difficulty: str) -> None:
    routes = [_arithmetic_route(item) for item in _items("arithmetic", difficulty)]
    assert any(set(route) == {"leftmost"} for route in routes)
    assert any(set(route) != {"leftmost"} for route in routes)
    if difficulty != "easy":  # easy expressions are chains: one operation is ready at a time
        assert any("other" in route for route in routes)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_arithmetic_check_is_one_line_per_operation_often_in_another_order(difficulty: str) -> None:
    reordered = 0
    for item in _items("arithmetic", difficulty):
        work, check = _work_and_check(item)
        steps = [sorted(line.removeprefix("Next: ").split()) for line in work if "Next: " in line]
        facts = [_ONE_LINE_FACT.fullmatch(line) for line in check]
        assert all(facts), check
        assert facts[-1].group(4) == item.answer
        reordered += [sorted(fact.group(1, 2, 3)) for fact in facts] != steps
    if difficulty == "hard":
        assert reordered >= 10


def _constant(side: str) -> int:
    """The number term of a collected side such as "5x - 15"."""
    terms = side.replace(" - ", " + -").split(" + ")
    return sum(int(term) for term in terms if "x" not in term)


def _equations_route(item: TaskItem) -> tuple[str, ...]:
    work, _ = _work_and_check(item)
    route = []
    sides = [line.split()[0] for line in work if re.match(r"(Left|Right) (x|numbers):", line)]
    route += sides[:1]
    moves = [line for line in work if line.startswith("Move ")]
    route += [move.split()[1] for move in moves]
    equation = work[0]
    for line in work:
        if line.startswith("Move numbers to the right: "):
            first = int(re.search(r": (-?\d+)", line).group(1))
            left, right = equation.removeprefix("Now: ").split(" = ")
            route.append("d - b" if first == _constant(right) else "-b + d")
        elif "x" in line and " = " in line and not line.startswith(("Move", "Expand", "x = ")):
            equation = line
    return tuple(route)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_equations_take_several_routes(difficulty: str) -> None:
    routes = {_equations_route(item) for item in _items("equations", difficulty)}
    assert len(routes) >= 2 if difficulty == "easy" else len(routes) >= 4


def _side_value(side: str, x: int) -> int:
    return eval(re.sub(r"(\d)(x|\()", r"\1*\2", side).replace("x", f"({x})"))  # noqa: S307


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_equations_check_substitutes_x_into_the_question(difficulty: str) -> None:
    for item in _items("equations", difficulty):
        _, check = _work_and_check(item)
        left, right = item.question.removeprefix("Solve for x: ").split(" = ")
        value = _side_value(left, int(item.answer))
        assert value == _side_value(right, int(item.answer))
        assert check[0] == f"Check x = {item.answer}:"
        assert f"Left = {value}" in check and check[-1] == f"Right = {value}"
