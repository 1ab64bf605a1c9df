"""Answers that carry their own working, for replies whose thought is absent or cut short.

A 12.9M model cannot add two-digit numbers in its head: asked with thinking off
(reasoning_effort none) or stopped by a small thinking budget, a bare ``\\boxed{}`` is mostly
wrong. Real reasoning models write a compact working into the answer in that case; so does the
built-in model when trained with ``answer_working`` (docs/model.md): the answer is the solution's
work lines (the route to its ``Result:`` line, without the check by another route), then the
final box, which stays the last thing in the answer, so answer extraction reads it unchanged.
A thought that was cut after it had stated its result needs no working: the box comes at once.
"""

from __future__ import annotations

from ponder.train.chat_format import answer_text

RESULT_PREFIX = "Result: "


def work_lines(solution: str) -> list[str]:
    """The solution's lines before its ``Result:`` line (all of them if it has none)."""
    lines = solution.split("\n")
    for index, line in enumerate(lines):
        if line.startswith(RESULT_PREFIX):
            return lines[:index]
    return lines


def working_answer_text(solution: str, answer: str, *, seen_thought: str = "") -> str:
    """The answer after an absent or cut thought: the working, then ``\\boxed{answer}``; only the
    box where ``seen_thought`` (what the cut thought wrote) already states the result."""
    if f"{RESULT_PREFIX}{answer}\n" in seen_thought:
        return answer_text(answer)
    work = "\n".join(line for line in work_lines(solution) if line.strip())
    return f"{work}\n{answer_text(answer)}" if work else answer_text(answer)
