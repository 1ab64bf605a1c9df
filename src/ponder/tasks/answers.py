"""Final answers: pull the answer out of a model's output and compare answers up to equivalence.

The fixed answer format: a model thinks, then writes its final answer as ``\\boxed{ANSWER}``.
``extract_answer(content, reasoning)`` reads the answer (the engine splits a reasoning model's
output into its thought and its answer): the last ``\\boxed{…}`` of the answer (nested braces
are fine), else the last one of the thought (an answer cut off by a token limit), else the last
"the answer is X" / "answer: X" phrase, answer before thought, else ``None``. An empty
``\\boxed{}`` is an explicit "no answer yet" (``None``: what the built-in model writes when a probe
closes its thought before it has a result).

``normalize_answer`` maps equivalent answers to one canonical string:
- numbers by exact value: "12" = "12.0" = " 12 " = "+12" = "1.2e1"; "1/2" = "0.5" =
  "\\frac{1}{2}"; "1,234" (thousands separators) = "1234"; a number followed by one unit word
  ("31 apples") is the number;
- comma/semicolon separated parts are compared as a multiset, in any order:
  "B=pears, A=apples" = "a = Apples; b = pears";
- a lone assignment with a numeric value is its value: "x = 6" = "6";
- case, surrounding whitespace, ``$``, ``\\text{…}`` and a trailing full stop do not matter.
"""

from __future__ import annotations

import functools
import re
from fractions import Fraction

ANSWER_OPENER = "\\boxed{"  # how the fixed format opens a final answer
_BOXED_OPENERS = (ANSWER_OPENER, "\\fbox{")
_ANSWER_PHRASE = re.compile(
    r"(?:final answer|the answer)\s*(?:is|:|=)\s*(.+?)\s*(?:\.\s|\.?$|\n)", re.IGNORECASE
)
_ANSWER_LINE = re.compile(r"^\s*answer\s*:\s*(.+?)\s*\.?\s*$", re.IGNORECASE | re.MULTILINE)
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?")
_NUMBER_WITH_UNIT = re.compile(r"([+-]?[\d.]+(?:/\d+)?)\s+[a-z]+")
_LATEX_FRAC = re.compile(r"\\d?frac\{([^{}]*)\}\{([^{}]*)\}")
_LATEX_TEXT = re.compile(r"\\(?:text|mathrm|textbf)\{([^{}]*)\}")
_SPACES = re.compile(r"\s+")


def extract_answer(content: str, reasoning: str = "") -> str | None:
    """The final answer: last \\boxed{…} of the answer, then of the thought; else an answer
    phrase (answer first); else None."""
    for part in (content, reasoning):
        boxed = _last_boxed(part)
        if boxed is not None:
            return boxed.strip() or None
    for part in (content, reasoning):
        phrases = _ANSWER_PHRASE.findall(part) + _ANSWER_LINE.findall(part)
        if phrases:
            return _last_match(part, phrases).strip()
    return None


@functools.lru_cache(maxsize=1 << 16)  # votes normalise the same few answers again and again
def normalize_answer(answer: str) -> str:
    """One canonical string for every equivalent way of writing ``answer`` (see module doc)."""
    text = _strip_wrappers(answer)
    if _THOUSANDS.fullmatch(text):
        text = text.replace(",", "")
    # a full stop ends a part as it ends the whole answer ("A=1., B=2."; "." alone is nothing)
    parts = [part.strip().rstrip(".").strip() for part in re.split(r"[,;]", text)]
    parts = [part for part in parts if part]
    if len(parts) == 1:
        return _normalize_single(parts[0])
    return ", ".join(sorted(_normalize_part(part) for part in parts))


def answers_equal(first: str | None, second: str | None) -> bool:
    """Whether two answers are equivalent; a missing answer equals nothing."""
    if first is None or second is None:
        return False
    return normalize_answer(first) == normalize_answer(second)


def _last_boxed(text: str) -> str | None:
    starts = [(text.rfind(opener), opener) for opener in _BOXED_OPENERS]
    start, opener = max(starts)
    while start >= 0:
        content = _balanced_content(text, start + len(opener))
        if content is not None:
            return content
        # An unclosed \boxed{ (e.g. cut off by a token limit): try the one before it.
        start = max(text.rfind(o, 0, start) for o in _BOXED_OPENERS)
    return None


def _balanced_content(text: str, begin: int) -> str | None:
    depth = 1
    for index in range(begin, len(text)):
        char = text[index]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[begin:index]
    return None


def _last_match(region: str, phrases: list[str]) -> str:
    return max(phrases, key=lambda phrase: region.rfind(phrase))


def _strip_wrappers(answer: str) -> str:
    text = answer.strip()
    boxed = _last_boxed(text)
    if boxed is not None:
        text = boxed
    text = _LATEX_FRAC.sub(r"(\1)/(\2)", text)
    text = _LATEX_TEXT.sub(r"\1", text)
    text = text.replace("$", "").replace("\\,", "").replace("\\!", "")
    text = _SPACES.sub(" ", text).strip().lower()
    return text.rstrip(".").strip()


def _normalize_single(part: str) -> str:
    normalized = _normalize_part(part)
    key, separator, value = normalized.partition("=")
    if separator and _as_number(value) is not None and key.isidentifier():
        return value
    return normalized


def _normalize_part(part: str) -> str:
    if "=" in part or ":" in part:
        key, _, value = re.split(r"(=|:)", part, maxsplit=1)
        return f"{_normalize_value(key)}={_normalize_value(value)}"
    return _normalize_value(part)


def _normalize_value(value: str) -> str:
    value = value.strip()
    number = _as_number(value)
    if number is None:
        unit_match = _NUMBER_WITH_UNIT.fullmatch(value)
        if unit_match:
            number = _as_number(unit_match.group(1))
    if number is not None:
        return _format_number(number)
    return value


def _as_number(value: str) -> Fraction | None:
    compact = value.replace(" ", "")
    # "(1)/(2)" comes from \frac; a bare parenthesised number is a number too.
    compact = re.sub(r"\(([+-]?[\d.]+)\)", r"\1", compact)
    if not compact or not re.fullmatch(r"[+-]?[\d.]+(e[+-]?\d+)?(/[+-]?\d+)?", compact):
        return None
    try:
        return Fraction(compact)
    except (ValueError, ZeroDivisionError):
        return None


def _format_number(number: Fraction) -> str:
    if number.denominator == 1:
        return str(number.numerator)
    return f"{number.numerator}/{number.denominator}"
