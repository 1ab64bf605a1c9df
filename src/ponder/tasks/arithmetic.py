"""Multi-step integer arithmetic with carries, borrows and parentheses, solved one operation at a time."""

from __future__ import annotations

import random
from dataclasses import dataclass

from ponder.tasks.column_math import add_lines, multiply_lines, subtract_lines
from ponder.tasks.family import TaskFamily, checked_solution, route_rng
from ponder.tasks.item import Problem

_PRECEDENCE = {"+": 1, "-": 1, "*": 2}
_MAX_VALUE = 99_999  # keeps every intermediate result at five digits or fewer


@dataclass(frozen=True)
class _Spec:
    min_ops: int
    max_ops: int
    operators: str
    max_leaf: int
    max_multiplier: int  # the small side of every product
    min_leaf: int = 10


_SPECS = {
    "easy": _Spec(min_ops=1, max_ops=2, operators="+-", max_leaf=99, max_multiplier=1),
    "medium": _Spec(min_ops=3, max_ops=3, operators="+-*", max_leaf=999, max_multiplier=9),
    "hard": _Spec(min_ops=4, max_ops=5, operators="+-*", max_leaf=999, max_multiplier=99),
}
# Plain small sums ("What is 2 + 3?"), outside the difficulty levels: what users ask first.
_SMALL = _Spec(min_ops=1, max_ops=2, operators="+-*", max_leaf=20, max_multiplier=9, min_leaf=0)


@dataclass(frozen=True)
class _Node:
    """A number (``op`` is None) or a binary operation over two sub-expressions."""

    value: int
    op: str | None = None
    left: _Node | None = None
    right: _Node | None = None


class ArithmeticFamily(TaskFamily):
    name = "arithmetic"
    description = "Evaluate + - * expressions with parentheses; worked digit by digit."

    def make(self, difficulty: str, rng: random.Random) -> Problem:
        return _make(_SPECS[difficulty], rng)


def small_problem(rng: random.Random) -> Problem:
    """A plain small sum with numbers 0-20 (products by one digit), solved the same way."""
    return _make(_SMALL, rng)


def _make(spec: _Spec, rng: random.Random) -> Problem:
    while True:
        expression = _random_expression(spec, rng.randint(spec.min_ops, spec.max_ops), rng)
        if expression is not None:
            break
    question = f"What is {_render(expression)}?"
    answer = str(expression.value)
    routes = route_rng(question)
    route = _evaluation_order(expression, routes)
    work = _work_lines(expression, route, routes)
    check = _check_lines(_check_order(expression, route, routes))
    return Problem(question, answer, checked_solution(work, answer, check))


def _random_expression(spec: _Spec, num_ops: int, rng: random.Random) -> _Node | None:
    """A random expression with ``num_ops`` operators, or None if a value went out of range."""
    if num_ops == 0:
        return _Node(rng.randint(spec.min_leaf, spec.max_leaf))
    op = rng.choice(spec.operators)
    if op == "*":
        small = _Node(rng.randint(2, spec.max_multiplier))
        other = _random_expression(spec, num_ops - 1, rng)
        if other is None:
            return None
        left, right = (small, other) if rng.random() < 0.3 else (other, small)
    else:
        left_ops = rng.randint(0, num_ops - 1)
        left = _random_expression(spec, left_ops, rng)
        right = _random_expression(spec, num_ops - 1 - left_ops, rng)
        if left is None or right is None:
            return None
        if op == "-" and left.value < right.value:
            left, right = right, left  # keeps every difference non-negative
    value = _apply(op, left.value, right.value)
    if value > _MAX_VALUE or (op == "*" and min(left.value, right.value) > spec.max_multiplier):
        return None
    return _Node(value, op, left, right)


def _apply(op: str, left: int, right: int) -> int:
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    return left * right


def _render(node: _Node) -> str:
    """The expression with only the parentheses its structure needs (left to right otherwise)."""
    if node.op is None:
        return str(node.value)
    assert node.left is not None and node.right is not None
    left = _render(node.left)
    right = _render(node.right)
    if node.left.op is not None and _PRECEDENCE[node.left.op] < _PRECEDENCE[node.op]:
        left = f"({left})"
    # A right operand of equal precedence needs brackets too: "a - (b + c)", "a + (b - c)".
    if node.right.op is not None and _PRECEDENCE[node.right.op] <= _PRECEDENCE[node.op]:
        right = f"({right})"
    return f"{left} {node.op} {right}"


def _evaluation_order(expression: _Node, rng: random.Random) -> list[_Node]:
    """A route: at each step a uniformly random ready operation (not always the leftmost)."""
    order: list[_Node] = []
    while ready := _ready(expression, order):
        order.append(rng.choice(ready))
    return order


def _all_orders(expression: _Node, done: tuple[_Node, ...] = ()) -> list[tuple[_Node, ...]]:
    """Every order in which the operations can be evaluated (at most 5! for five operations)."""
    ready = _ready(expression, list(done))
    if not ready:
        return [done]
    return [order for node in ready for order in _all_orders(expression, (*done, node))]


def _check_order(expression: _Node, route: list[_Node], rng: random.Random) -> list[_Node]:
    """Another evaluation order than the route's where one exists, so the check differs.

    Orders are compared by value, so swapping two identical operations does not count as another.
    """
    others = [list(order) for order in _all_orders(expression) if list(order) != route]
    return rng.choice(others) if others else route


def _ready(node: _Node, done: list[_Node]) -> list[_Node]:
    """Operations not yet done whose operands are numbers or done operations, left to right."""
    if _is_number(node, done):
        return []
    assert node.left is not None and node.right is not None
    if _is_number(node.left, done) and _is_number(node.right, done):
        return [node]
    return _ready(node.left, done) + _ready(node.right, done)


def _is_number(node: _Node, done: list[_Node]) -> bool:
    return node.op is None or any(node is finished for finished in done)


def _collapse(node: _Node, done: list[_Node]) -> _Node:
    """The expression with every done operation replaced by its value."""
    if _is_number(node, done):
        return _Node(node.value)
    assert node.left is not None and node.right is not None
    return _Node(node.value, node.op, _collapse(node.left, done), _collapse(node.right, done))


def _work_lines(expression: _Node, route: list[_Node], rng: random.Random) -> list[str]:
    lines = [_render(expression)]
    for step, node in enumerate(route, start=1):
        assert node.left is not None and node.right is not None and node.op is not None
        left, right = node.left.value, node.right.value
        if node.op == "+" and rng.random() < 0.5:
            left, right = right, left  # commutative: the column work differs, the sum does not
        lines.append(f"Next: {left} {node.op} {right}")
        lines += _operation_lines(node.op, left, right)
        lines.append(f"Now: {_render(_collapse(expression, route[:step]))}")
    return lines


def _check_lines(order: list[_Node]) -> list[str]:
    """A short recap pass: each operation as one line, without column work."""
    lines = []
    for node in order:
        assert node.left is not None and node.right is not None
        lines.append(f"{node.left.value} {node.op} {node.right.value} = {node.value}")
    return lines


def _operation_lines(op: str, left: int, right: int) -> list[str]:
    if op == "+":
        return add_lines(left, right)
    if op == "-":
        return subtract_lines(left, right)
    return multiply_lines(left, right)
