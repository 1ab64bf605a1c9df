"""Worked arithmetic in one fixed, digit-by-digit format shared by every task family.

A small model learns arithmetic far better when each step is a single-digit fact, so sums,
differences, products and quotients are written column by column, right to left, with every
carry and borrow spelled out. Each helper returns the worked lines; the last line always states
the full result ("478 + 356 = 834").
"""

from __future__ import annotations


def add_lines(left: int, right: int) -> list[str]:
    """Column addition of two non-negative integers."""
    total = left + right
    if left < 10 and right < 10:
        return [f"{left} + {right} = {total}"]
    lines = []
    left_digits, right_digits = _padded_digits(left, right)
    carry = 0
    for column, (top, bottom) in enumerate(zip(left_digits, right_digits, strict=True)):
        is_last = column == len(left_digits) - 1
        terms = f"{top} + {bottom}" + (f" + {carry}" if carry else "")
        column_sum = top + bottom + carry
        if is_last:
            lines.append(f"{terms} = {column_sum}, write {column_sum}")
        elif column_sum >= 10:
            lines.append(f"{terms} = {column_sum}, write {column_sum - 10} carry 1")
        else:
            lines.append(f"{terms} = {column_sum}, write {column_sum}")
        carry = column_sum // 10
    lines.append(f"{left} + {right} = {total}")
    return lines


def subtract_lines(left: int, right: int) -> list[str]:
    """Column subtraction with borrows; needs ``left >= right >= 0``."""
    if left < right or right < 0:
        raise ValueError(f"subtract_lines needs left >= right >= 0, got {left} - {right}")
    difference = left - right
    if left < 20 and right < 10 and difference < 10:
        return [f"{left} - {right} = {difference}"]
    lines = []
    left_digits, right_digits = _padded_digits(left, right)
    borrow = 0
    for top, bottom in zip(left_digits, right_digits, strict=True):
        terms = f"{top} - 1 - {bottom}" if borrow else f"{top} - {bottom}"
        available = top - borrow
        if available >= bottom:
            lines.append(f"{terms} = {available - bottom}")
            borrow = 0
        else:
            lines.append(f"{terms}, borrow: {available + 10} - {bottom} = {available + 10 - bottom}")
            borrow = 1
    lines.append(f"{left} - {right} = {difference}")
    return lines


def multiply_lines(left: int, right: int) -> list[str]:
    """Column multiplication; a multi-digit multiplier is split into tens and ones."""
    if left < 10 and right < 10:
        return [f"{left} * {right} = {left * right}"]
    if right > left:  # the smaller number is always the multiplier
        return [f"{left} * {right} = {right} * {left}", *multiply_lines(right, left)]
    if right < 10:
        return _multiply_by_digit(left, right)
    if right >= 100:
        raise ValueError(f"multiply_lines supports multipliers below 100, got {right}")
    tens, ones = divmod(right, 10)
    lines = [f"{left} * {right}: {right} = {tens * 10} + {ones}"]
    if ones:
        lines += multiply_lines(left, ones)
    lines += multiply_lines(left, tens)
    lines.append(f"so {left} * {tens * 10} = {left * tens * 10}")
    if ones:
        lines += add_lines(left * ones, left * tens * 10)
        lines.append(f"{left} * {right} = {left * right}")
    return lines


def divide_lines(dividend: int, divisor: int) -> list[str]:
    """Long division by a single digit, one dividend digit at a time; must divide exactly."""
    if not 1 <= divisor <= 9 or dividend < 0 or dividend % divisor:
        raise ValueError(f"divide_lines needs an exact division by 1-9, got {dividend} / {divisor}")
    quotient = dividend // divisor
    if dividend < 10 * divisor:
        return [f"{dividend} / {divisor} = {quotient}"]
    lines = []
    remainder = 0
    for digit in str(dividend):
        current = remainder * 10 + int(digit)
        remainder = current % divisor
        lines.append(f"{current} / {divisor} = {current // divisor} r {remainder}")
    lines.append(f"{dividend} / {divisor} = {quotient}")
    return lines


def signed_add_lines(left: int, right: int) -> list[str]:
    """``left + right`` for integers of any sign, reduced to one unsigned column operation."""
    shown = f"{left} + {right}" if right >= 0 else f"{left} - {-right}"
    total = left + right
    if left >= 0 and right >= 0:
        return add_lines(left, right)
    if left < 0 and right < 0:
        return [f"{shown} = -({-left} + {-right})", *add_lines(-left, -right), f"{shown} = {total}"]
    positive, negative = (left, -right) if left >= 0 else (right, -left)
    if positive >= negative:
        head = [] if left >= 0 else [f"{shown} = {positive} - {negative}"]
        return [
            *head,
            *subtract_lines(positive, negative),
            *([f"{shown} = {total}"] if head else []),
        ]
    return [
        f"{shown} = -({negative} - {positive})",
        *subtract_lines(negative, positive),
        f"{shown} = {total}",
    ]


def signed_multiply_lines(left: int, right: int) -> list[str]:
    """``left * right`` for integers of any sign: the unsigned product, then the signed one."""
    if left >= 0 and right >= 0:
        return multiply_lines(left, right)
    unsigned = multiply_lines(abs(left), abs(right))
    return [*unsigned, f"{_signed(left)} * {_signed(right)} = {left * right}"]


def _signed(number: int) -> str:
    return f"({number})" if number < 0 else str(number)


def _padded_digits(left: int, right: int) -> tuple[list[int], list[int]]:
    """Digits of both numbers, least significant first, padded with zeros to equal length."""
    width = max(len(str(left)), len(str(right)))
    return _digits_reversed(left, width), _digits_reversed(right, width)


def _digits_reversed(number: int, width: int) -> list[int]:
    return [int(digit) for digit in reversed(str(number).zfill(width))]


def _multiply_by_digit(left: int, digit: int) -> list[str]:
    lines = []
    carry = 0
    left_digits = _digits_reversed(left, len(str(left)))
    for column, top in enumerate(left_digits):
        is_last = column == len(left_digits) - 1
        product = top * digit
        step = f"{top} * {digit} = {product}"
        value = product + carry
        if carry:
            step += f", + {carry} = {value}"
        if is_last or value < 10:
            lines.append(f"{step}, write {value}")
        else:
            lines.append(f"{step}, write {value % 10} carry {value // 10}")
        carry = value // 10
    lines.append(f"{left} * {digit} = {left * digit}")
    return lines
