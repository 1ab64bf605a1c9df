"""Linear equations in x: expand brackets, collect each side, move terms across, divide."""

from __future__ import annotations

import random
from dataclasses import dataclass

from ponder.tasks.column_math import (
    add_lines,
    divide_lines,
    multiply_lines,
    signed_add_lines,
    signed_multiply_lines,
    subtract_lines,
)
from ponder.tasks.family import TaskFamily, checked_solution, route_rng
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
        question = f"Solve for x: {_render(left)} = {_render(right)}"
        route = _random_route(route_rng(question))
        work = _solution_lines(left, right, x, route)
        solution = checked_solution(work, str(x), _check_lines(left, right, x))
        return Problem(question, str(x), solution)


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
    return _join([term.render() for term in terms])


def _join(parts: list[str]) -> str:
    """Terms joined by + and -, a negative term written as a subtraction: "2x - 7"."""
    text = parts[0]
    for part in parts[1:]:
        text += f" - {part[1:]}" if part.startswith("-") else f" + {part}"
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


@dataclass(frozen=True)
class _Route:
    """The random choices of one worked solution; each changes its intermediate lines."""

    right_side_first: bool  # expand and collect the right side before the left
    numbers_first: bool  # move the numbers right before moving the x terms left
    numbers_reversed: bool  # add the moved numbers as "-b + d" instead of "d - b"


def _random_route(rng: random.Random) -> _Route:
    return _Route(rng.random() < 0.5, rng.random() < 0.5, rng.random() < 0.5)


# a x + b = c x + d, the equation after collecting each side.
_Linear = tuple[int, int, int, int]


def _solution_lines(left: list[_Term], right: list[_Term], x: int, route: _Route) -> list[str]:
    lines = [f"{_render(left)} = {_render(right)}"]
    names = ("Right", "Left") if route.right_side_first else ("Left", "Right")
    sides = {"Left": left, "Right": right}
    expanded = {name: _expand(sides[name], lines) for name in names}
    if expanded["Left"] != left or expanded["Right"] != right:
        lines.append(f"Now: {_render(expanded['Left'])} = {_render(expanded['Right'])}")
    collected = {name: _collect(name, expanded[name], lines) for name in names}
    state = (*collected["Left"], *collected["Right"])
    if _show(state) != f"{_render(expanded['Left'])} = {_render(expanded['Right'])}":
        lines.append(f"Now: {_show(state)}")
    moves = (_move_numbers, _move_x_terms) if route.numbers_first else (_move_x_terms, _move_numbers)
    for move in moves:
        state = move(state, route, lines)
    coefficient, _, _, value = state
    lines.append(f"Now: {_linear(coefficient, 0)} = {value}")
    if coefficient != 1:
        lines.append(f"x = {value} / {coefficient}")
        if value < 0:
            lines.append(f"{value} / {coefficient} = -({-value} / {coefficient})")
        lines += divide_lines(abs(value), coefficient)
    lines.append(f"x = {x}")
    return lines


def _show(state: _Linear) -> str:
    a, b, c, d = state
    return f"{_linear(a, b)} = {_linear(c, d)}"


def _move_x_terms(state: _Linear, route: _Route, lines: list[str]) -> _Linear:
    a, b, c, d = state
    if not c:
        return state
    lines.append(f"Move x terms to the left: {a} - {c}")
    lines += subtract_lines(a, c)
    return a - c, b, 0, d


def _move_numbers(state: _Linear, route: _Route, lines: list[str]) -> _Linear:
    a, b, c, d = state
    if not b:
        return state
    first, second = (-b, d) if route.numbers_reversed else (d, -b)
    lines.append(f"Move numbers to the right: {_render([_Term(0, first), _Term(0, second)])}")
    lines += signed_add_lines(first, second)
    return a, 0, c, d - b


def _check_lines(left: list[_Term], right: list[_Term], x: int) -> list[str]:
    """Substitute x into the original equation and work out both sides."""
    return [f"Check x = {x}:", *_side_lines("Left", left, x), *_side_lines("Right", right, x)]


def _side_lines(name: str, terms: list[_Term], x: int) -> list[str]:
    substituted = _join([_substitute(term, x) for term in terms])
    lines = [] if substituted == str(_side_value(terms, x)) else [f"{name}: {substituted}"]
    total = _term_value_lines(terms[0], x, lines)
    for term in terms[1:]:
        value = _term_value_lines(term, x, lines)
        lines.append(f"{_join([str(total), str(value)])} = {total + value}")
        total += value
    lines.append(f"{name} = {total}")
    return lines


def _side_value(terms: list[_Term], x: int) -> int:
    return sum(term.value(x) for term in terms)


def _substitute(term: _Term, x: int) -> str:
    """The term with x written in: "3(-5 + 4)", "2*(-5)", "7"."""
    shown_x = f"({x})" if x < 0 else str(x)
    if term.offset is not None:
        sign = "+" if term.offset > 0 else "-"
        return f"{term.coefficient}({x} {sign} {abs(term.offset)})"
    if term.coefficient:
        return shown_x if term.coefficient == 1 else f"{term.coefficient}*{shown_x}"
    return str(term.constant)


def _term_value_lines(term: _Term, x: int, lines: list[str]) -> int:
    """The term's value at x, its column work appended to ``lines``."""
    if term.offset is not None:
        inner = x + term.offset
        lines.append(f"{_join([str(x), str(term.offset)])} = {inner}")
        lines += signed_multiply_lines(inner, term.coefficient)
    elif term.coefficient > 1:
        lines += signed_multiply_lines(x, term.coefficient)
    return term.value(x)
