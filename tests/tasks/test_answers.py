"""Answer extraction and normalisation: equivalent forms are equal, different answers are not."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ponder.tasks.answers import answers_equal, extract_answer, normalize_answer

LABEL_VALUES = ["apples", "pears", "plums", "mixed", "figs"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\\boxed{1} then \\boxed{2}", "2"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{a{b{c}}d}", "a{b{c}}d"),
        ("\\boxed{7} and a cut-off \\boxed{8", "7"),
        ("So the answer is 12.", "12"),
        ("Answer: B=pears, A=apples", "B=pears, A=apples"),
        ("no answer here", None),
        ("\\boxed{}", None),  # an empty box: no answer yet
        ("the answer is 4 \\boxed{ }", None),
        ("", None),
    ],
)
def test_extract_answer(text: str, expected: str | None) -> None:
    assert extract_answer(text) == expected


@pytest.mark.parametrize(
    ("content", "reasoning", "expected"),
    [
        ("\\boxed{42}", "maybe \\boxed{41}", "42"),  # the answer wins over the thought
        ("", "so \\boxed{41}", "41"),  # cut off while answering: the thought's last box
        ("The final answer is 5", "the answer is 3", "5"),
        ("no box", "the answer is 3", "3"),
        ("\\boxed{}", "\\boxed{41}", None),  # an empty answer box is the model's "not yet"
        ("", "", None),
    ],
)
def test_extract_answer_reads_the_answer_before_the_thought(content, reasoning, expected) -> None:
    assert extract_answer(content, reasoning) == expected


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("12", "12.0"),
        ("12", " 12 "),
        ("12", "+12"),
        ("1/2", "0.5"),
        ("\\frac{1}{2}", "0.5"),
        ("1,234", "1234"),
        ("x = 6", "6"),
        ("$-3$", "-3"),
        ("31 apples", "31"),
        ("Cal", " cal. "),
        ("A=apples, B=pears", "B=pears,A=apples"),
        ("A=apples, B=pears", "a = Apples; b = pears"),
        ("draw=C, A=pears", "A: pears, draw: C"),
        ("\\boxed{12}", "12"),
        ("\\text{mixed}", "mixed"),
    ],
)
def test_equivalent_forms_are_equal(first: str, second: str) -> None:
    assert answers_equal(first, second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("12", "13"),
        ("12", "-12"),
        ("1/2", "1/3"),
        ("A=apples, B=pears", "A=pears, B=apples"),
        ("A=apples, B=pears", "A=apples"),
        ("Cal", "Dan"),
        ("12", None),
        (None, None),
    ],
)
def test_different_answers_are_not_equal(first: str | None, second: str | None) -> None:
    assert not answers_equal(first, second)


@given(st.integers(min_value=-(10**9), max_value=10**9))
def test_integer_forms(value: int) -> None:
    forms = [str(value), f"{value}.0", f"  {value}  ", f"{value}.000", f"${value}$"]
    if value >= 0:
        forms.append(f"+{value}")
    forms.append(f"{value * 4}/4")
    for form in forms:
        assert answers_equal(form, str(value)), form
    assert not answers_equal(str(value), str(value + 1))


@given(st.fractions(min_value=-1000, max_value=1000, max_denominator=50))
def test_fraction_and_decimal_forms(value: Fraction) -> None:
    as_fraction = f"{value.numerator}/{value.denominator}"
    assert normalize_answer(as_fraction) == normalize_answer(str(value))
    if value.denominator in (1, 2, 4, 5, 8, 10, 20, 25, 40, 50):  # exact decimals
        assert answers_equal(as_fraction, str(float(value)))


@given(
    st.dictionaries(st.sampled_from("ABCDEFGH"), st.sampled_from(LABEL_VALUES), min_size=1, max_size=6),
    st.randoms(use_true_random=False),
    st.sampled_from([", ", ",", "; ", " , "]),
)
def test_assignments_in_any_order_and_case(assignment: dict, rng, separator: str) -> None:
    parts = [f"{box}={kind}" for box, kind in assignment.items()]
    shuffled = parts[:]
    rng.shuffle(shuffled)
    restyled = separator.join(part.upper() if rng.random() < 0.5 else part for part in shuffled)
    assert answers_equal(", ".join(parts), restyled)


@given(
    st.dictionaries(st.sampled_from("ABCDEF"), st.sampled_from(LABEL_VALUES), min_size=2, max_size=6),
    st.data(),
)
def test_changed_assignment_is_not_equal(assignment: dict, data) -> None:
    box = data.draw(st.sampled_from(sorted(assignment)))
    other = data.draw(st.sampled_from([k for k in LABEL_VALUES if k != assignment[box]]))
    changed = {**assignment, box: other}
    render = lambda mapping: ", ".join(f"{k}={v}" for k, v in mapping.items())
    assert not answers_equal(render(assignment), render(changed))


@given(
    st.text(alphabet=st.characters(blacklist_characters="\\{}"), max_size=40),
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=0, max_value=3),
)
def test_extract_last_boxed_with_nesting(prefix: str, value: int, depth: int) -> None:
    inner = "{" * depth + str(value) + "}" * depth
    text = f"{prefix}\\boxed{{0}} {prefix}\\boxed{{{inner}}}"
    assert extract_answer(text) == inner
    assert answers_equal(extract_answer(text).strip("{}"), str(value))


@given(st.text(max_size=60))
@example(".,")  # once normalised to ".", which normalised again to ""
def test_normalize_never_crashes_and_is_idempotent(text: str) -> None:
    once = normalize_answer(text)
    assert normalize_answer(once) == once
