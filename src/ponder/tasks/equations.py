"""Linear equations in x: expand brackets, collect each side, move terms across, divide."""

from __future__ import annotations

import random
from dataclasses import dataclass

from ponder.tasks.column_math import (
    add_lines,
    divide_lines,
    multiply_lines,
    signed_add_lines,
    subtract_lines,
)
from ponder.tasks.family import TaskFamily, final_line
from ponder.tasks.item import Problem


@dataclass(frozen=True)
class _Term:
    """``coefficient * x`` (offset None), a constant (coefficient 0), or coefficient(x + offset)."""

    coefficient: int
    constant: int = 0
    offset: int | None = None

    def value(self, x: int) -> int:
        if self.offset is not None:
            return self.coefficient * (x + self.offset)
        return self.coefficient * x + self.constant

    def render(self) -> str:
        if self.offset is not None:
            sign = "+" if self.offset > 0 else "-"
            return f"{self.coefficient}(x {sign} {abs(self.offset)})"
        if self.coefficient:
            return "x" if self.coefficient == 1 else f"{self.coefficient}x"
        return str(self.constant)


class EquationsFamily(TaskFamily):
    name = "equations"
    description = "Solve a linear equation in x with an integer solution."

    def make(self, difficulty: str, rng: random.Random) -> Problem:
        while True:
            x = rng.randint(1, 20) if difficulty != "hard" else rng.choice(_HARD_SOLUTIONS)
            sides = _random_sides(difficulty, x, rng)
            if sides is not None:
                break
        left, right = sides
        equation = f"{_render(left)} = {_render(right)}"
        return Problem(
            question=f"Solve for x: {equation}",
            answer=str(x),
            solution="\n".join(_solution_lines(left, right, x)),
        )


_HARD_SOLUTIONS = [value for value in range(-9, 26) if value != 0]


def _random_sides(difficulty: str, x: int, rng: random.Random) -> tuple[list, list] | None:
    """Both sides as term lists, or None when the draw breaks a constraint (then redraw)."""
    if difficulty == "easy":
        left = [_Term(rng.randint(2, 9)), _Term(0, _nonzero(rng, 30))]
        right_value = sum(term.value(x) for term in left)
        if right_value <= 0:
            return None
        return left, [_Term(0, right_value)]
    if difficulty == "medium":
        left = [_Term(rng.randint(2, 9)), _Term(0, _nonzero(rng, 40))]
        right = [_Term(rng.randint(1, 9))]
    else:
        left = [_random_hard_term(rng), _random_hard_term(rng)]
        right = [_random_hard_term(rng)]
        if not any(term.offset is not None for term in left + right):
            return None
    missing = sum(t.value(x) for t in left) - sum(t.value(x) for t in right)
    if missing == 0:
        return None
    right.append(_Term(0, missing))
    rng.shuffle(left)
    left_x, right_x = _x_coefficient(left), _x_coefficient(right)
    if left_x < right_x:
        left, right, left_x, right_x = right, left, right_x, left_x
    if left_x == right_x or left_x - right_x > 9:
        return None
    return left, right


def _random_hard_term(rng: random.Random) -> _Term:
    if rng.random() < 0.6:
        return _Term(rng.randint(2, 9), offset=_nonzero(rng, 12))
    return _Term(rng.randint(1, 9))


def _nonzero(rng: random.Random, bound: int) -> int:
    return rng.choice([value for value in range(-bound, bound + 1) if value != 0])


def _x_coefficient(terms: list[_Term]) -> int:
    return sum(term.coefficient for term in terms)


def _render(terms: list[_Term]) -> str:
    text = terms[0].render()
    for term in terms[1:]:
        rendered = term.render()
        text += f" - {rendered[1:]}" if rendered.startswith("-") else f" + {rendered}"
    return text


def _expand(terms: list[_Term], lines: list[str]) -> list[_Term]:
    """Brackets multiplied out (worked lines appended), every term now kx or a constant."""
    expanded = []
    for term in terms:
        if term.offset is None:
            expanded.append(term)
            continue
        product = term.coefficient * abs(term.offset)
        lines.append(f"Expand {term.render()}:")
        lines += multiply_lines(term.coefficient, abs(term.offset))
        constant = product if term.offset > 0 else -product
        pieces = [_Term(term.coefficient), _Term(0, constant)]
        lines.append(f"{term.render()} = {_render(pieces)}")
        expanded += pieces
    return expanded


def _collect(side_name: str, terms: list[_Term], lines: list[str]) -> tuple[int, int]:
    """Sum the x coefficients and the constants of one side, writing the work when needed."""
    coefficients = [term.coefficient for term in terms if term.coefficient]
    constants = [term.constant for term in terms if not term.coefficient]
    x_total = coefficients[0] if coefficients else 0
    if len(coefficients) > 1:
        lines.append(f"{side_name} x: {' + '.join(map(str, coefficients))}")
        for coefficient in coefficients[1:]:
            lines += add_lines(x_total, coefficient)
            x_total += coefficient
    number_total = constants[0] if constants else 0
    if len(constants) > 1:
        lines.append(f"{side_name} numbers: {_render([_Term(0, c) for c in constants])}")
        for constant in constants[1:]:
            lines += signed_add_lines(number_total, constant)
            number_total += constant
    return x_total, number_total


def _linear(x_coefficient: int, constant: int) -> str:
    terms = [_Term(x_coefficient)] if x_coefficient else []
    if constant or not terms:
        terms.append(_Term(0, constant))
    return _render(terms)


def _solution_lines(left: list[_Term], right: list[_Term], x: int) -> list[str]:
    lines = [f"{_render(left)} = {_render(right)}"]
    left_terms, right_terms = _expand(left, lines), _expand(right, lines)
    if left_terms != left or right_terms != right:
        lines.append(f"Now: {_render(left_terms)} = {_render(right_terms)}")
    a, b = _collect("Left", left_terms, lines)
    c, d = _collect("Right", right_terms, lines)
    collected = f"{_linear(a, b)} = {_linear(c, d)}"
    if collected != f"{_render(left_terms)} = {_render(right_terms)}":
        lines.append(f"Now: {collected}")
    if c:
        lines.append(f"Move x terms to the left: {a} - {c}")
        lines += subtract_lines(a, c)
    if b:
        lines.append(f"Move numbers to the right: {_render([_Term(0, d), _Term(0, -b)])}")
        lines += signed_add_lines(d, -b)
    coefficient, value = a - c, d - b
    lines.append(f"Now: {_linear(coefficient, 0)} = {value}")
    if coefficient != 1:
        lines.append(f"x = {value} / {coefficient}")
        if value < 0:
            lines.append(f"{value} / {coefficient} = -({-value} / {coefficient})")
        lines += divide_lines(abs(value), coefficient)
    lines.append(f"x = {x}")
    lines.append(final_line(str(x)))
    return lines
