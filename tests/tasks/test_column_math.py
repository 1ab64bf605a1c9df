"""Worked arithmetic: every written step is true and the last line states the right result."""

from __future__ import annotations

import operator
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ponder.tasks.column_math import (
    add_lines,
    divide_lines,
    multiply_lines,
    signed_add_lines,
    signed_multiply_lines,
    subtract_lines,
)

# A whole "a op b = c" (not the start of a rewrite such as "-1 + 1 = 1 - 1").
_EQUATION = re.compile(r"(-?\d+(?: [-+*/] -?\d+)+) = (-?\d+)(?!\d| [-+*/])")
_OPERATORS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.floordiv}


def _assert_steps_true(lines: list[str]) -> None:
    """Every "a op b ... = c" written in the lines holds (left to right, as written)."""
    for line in lines:
        for expression, result in _EQUATION.findall(line):
            tokens = expression.split()
            value = int(tokens[0])
            for op, operand in zip(tokens[1::2], tokens[2::2], strict=True):
                value = _OPERATORS[op](value, int(operand))
            assert value == int(result), line


naturals = st.integers(min_value=0, max_value=99_999)


@given(naturals, naturals)
def test_addition(left: int, right: int) -> None:
    lines = add_lines(left, right)
    _assert_steps_true(lines)
    assert lines[-1] == f"{left} + {right} = {left + right}"


@given(naturals, naturals)
def test_subtraction(first: int, second: int) -> None:
    left, right = max(first, second), min(first, second)
    lines = subtract_lines(left, right)
    _assert_steps_true(lines)
    assert lines[-1] == f"{left} - {right} = {left - right}"
    for line in lines[:-1]:
        if "borrow" in line:
            assert re.search(r"borrow: (\d+) - (\d+) = (\d+)$", line)


@given(st.integers(min_value=0, max_value=9_999), st.integers(min_value=0, max_value=99))
def test_multiplication(left: int, right: int) -> None:
    lines = multiply_lines(left, right)
    assert lines[-1].endswith(f"= {left * right}")
    for line in lines:
        for a, b, product in re.findall(r"(\d+) \* (\d+) = (\d+)(?!\d| \*)", line):
            assert int(a) * int(b) == int(product), line


@given(st.integers(min_value=0, max_value=9_999), st.integers(min_value=1, max_value=9))
def test_division(quotient: int, divisor: int) -> None:
    dividend = quotient * divisor
    lines = divide_lines(dividend, divisor)
    assert lines[-1] == f"{dividend} / {divisor} = {quotient}"
    for line in lines[:-1]:
        current, step_divisor, digit, remainder = map(int, re.findall(r"\d+", line))
        assert current == digit * step_divisor + remainder and remainder < step_divisor


@given(st.integers(min_value=-9_999, max_value=9_999), st.integers(min_value=-9_999, max_value=9_999))
def test_signed_addition(left: int, right: int) -> None:
    lines = signed_add_lines(left, right)
    _assert_steps_true(lines)
    assert lines[-1].endswith(f"= {left + right}")


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError):
        subtract_lines(3, 5)
    with pytest.raises(ValueError):
        divide_lines(7, 2)
    with pytest.raises(ValueError):
        multiply_lines(123, 456)


@given(st.integers(min_value=-999, max_value=999), st.integers(min_value=-99, max_value=99))
def test_signed_multiplication(left: int, right: int) -> None:
    lines = signed_multiply_lines(left, right)
    assert lines[-1].endswith(f"= {left * right}")
    _assert_steps_true([re.sub(r"\((-\d+)\)", r"\1", line) for line in lines])
