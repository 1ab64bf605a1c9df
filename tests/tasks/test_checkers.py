"""Every family's checker accepts its gold answer in equivalent forms and rejects wrong ones."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ponder.tasks import DIFFICULTIES, FAMILIES, TaskItem, generate

ALL_CELLS = [(family, difficulty) for family in FAMILIES for difficulty in DIFFICULTIES]


def _equivalent_forms(item: TaskItem) -> list[str]:
    answer = item.answer
    forms = [
        answer,
        f"  {answer.upper()} ",
        f"<think>\n{item.solution}\n</think>\n\n\\boxed{{{answer}}}",
        f"The answer is {answer}.",
    ]
    if re.fullmatch(r"-?\d+", answer):
        forms += [f"{answer}.0", f"\\boxed{{{answer}.00}}"]
        if item.family == "equations":
            forms.append(f"x = {answer}")
    if "=" in answer:
        parts = [part.strip() for part in answer.split(",")]
        forms.append("; ".join(reversed(parts)))
        forms.append(", ".join(part.replace("=", " = ") for part in parts[::-1]))
    return forms


def _wrong_answers(item: TaskItem) -> list[str]:
    answer = item.answer
    if re.fullmatch(r"-?\d+", answer):
        value = int(answer)
        return [str(value + 1), str(value - 1), str(-value - 1), f"\\boxed{{{value + 10}}}", ""]
    if "=" in answer:
        parts = [part.strip() for part in answer.split(",")]
        keys = [part.split("=")[0] for part in parts]
        values = [part.split("=")[1] for part in parts]
        fruit_keys = [i for i, key in enumerate(keys) if key != "draw"]
        first, second = fruit_keys[0], fruit_keys[1]
        swapped = values[:]
        swapped[first], swapped[second] = values[second], values[first]
        return [
            ", ".join(f"{k}={v}" for k, v in zip(keys, swapped, strict=True)),
            ", ".join(parts[:-1]),
            "mixed",
        ]
    return ["Nobody", answer + "x", f"\\boxed{{{answer}}} \\boxed{{Zed}}"]


@pytest.mark.parametrize(("family", "difficulty"), ALL_CELLS)
def test_checker_accepts_equivalent_forms(family: str, difficulty: str) -> None:
    for item in generate(family, difficulty, 10, seed=2):
        for form in _equivalent_forms(item):
            assert item.check(form), (item.answer, form)


@pytest.mark.parametrize(("family", "difficulty"), ALL_CELLS)
def test_checker_rejects_wrong_answers(family: str, difficulty: str) -> None:
    for item in generate(family, difficulty, 10, seed=2):
        assert not item.check(None)
        for wrong in _wrong_answers(item):
            assert not item.check(wrong), (item.answer, wrong)


@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from(FAMILIES),
    st.sampled_from(DIFFICULTIES),
    st.integers(min_value=0, max_value=10**6),
)
def test_worked_solution_with_boxed_answer_always_checks(family, difficulty, seed) -> None:
    (item,) = generate(family, difficulty, 1, split="train", seed=seed)
    model_output = f"<think>\n{item.solution}\n</think>\n\n\\boxed{{{item.answer}}}"
    assert item.check(model_output)
    assert not item.check(model_output.replace(f"\\boxed{{{item.answer}}}", "\\boxed{?}"))
