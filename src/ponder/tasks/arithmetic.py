"""Multi-step integer arithmetic with carries, borrows and parentheses, solved one operation at a time."""

from __future__ import annotations

import random
from dataclasses import dataclass

from ponder.tasks.column_math import add_lines, multiply_lines, subtract_lines
from ponder.tasks.family import TaskFamily, final_line
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


_SPECS = {
    "easy": _Spec(min_ops=1, max_ops=2, operators="+-", max_leaf=99, max_multiplier=1),
    "medium": _Spec(min_ops=3, max_ops=3, operators="+-*", max_leaf=999, max_multiplier=9),
    "hard": _Spec(min_ops=4, max_ops=5, operators="+-*", max_leaf=999, max_multiplier=99),
}


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
        spec = _SPECS[difficulty]
        while True:
            expression = _random_expression(spec, rng.randint(spec.min_ops, spec.max_ops), rng)
            if expression is not None:
                break
        rendered = _render(expression)
        return Problem(
            question=f"What is {rendered}?",
            answer=str(expression.value),
            solution="\n".join(_solution_lines(expression)),
        )


def _random_expression(spec: _Spec, num_ops: int, rng: random.Random) -> _Node | None:
    """A random expression with ``num_ops`` operators, or None if a value went out of range."""
    if num_ops == 0:
        return _Node(rng.randint(10, spec.max_leaf))
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


def _solution_lines(expression: _Node) -> list[str]:
    lines = [_render(expression)]
    current = expression
    while current.op is not None:
        ready = _first_ready(current)
        assert ready.left is not None and ready.right is not None and ready.op is not None
        lines.append(f"Next: {_render(ready)}")
        lines += _operation_lines(ready.op, ready.left.value, ready.right.value)
        current = _replace(current, ready)
        lines.append(f"Now: {_render(current)}")
    lines.append(final_line(str(current.value)))
    return lines


def _first_ready(node: _Node) -> _Node:
    """The leftmost operation whose operands are both numbers: the next one to evaluate."""
    assert node.left is not None and node.right is not None
    if node.left.op is None and node.right.op is None:
        return node
    return _first_ready(node.left if node.left.op is not None else node.right)


def _replace(node: _Node, target: _Node) -> _Node:
    if node is target:
        return _Node(node.value)
    if node.op is None:
        return node
    assert node.left is not None and node.right is not None
    return _Node(node.value, node.op, _replace(node.left, target), _replace(node.right, target))


def _operation_lines(op: str, left: int, right: int) -> list[str]:
    if op == "+":
        return add_lines(left, right)
    if op == "-":
        return subtract_lines(left, right)
    return multiply_lines(left, right)
