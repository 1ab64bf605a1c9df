"""Task questions asked another way: other framings, spacing and word order, and plain small sums.

The built-in model learned one phrasing per family ("What is 47 + 38?"); served users write
"What is 2+3?" or "Compute 47+38.". This module rewrites a task item's question with one of
several templates, keeping its gold answer and worked solution, so a model can be trained on
some phrasings and measured on others. There are two disjoint template sets: `train` (for
training data) and `eval` (for the robustness eval set); no template is in both, and eval items
come from the test split (by the canonical question's hash) while training items come from the
train split, so an eval question is never seen in training in any phrasing.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from ponder.errors import InvalidRequestError
from ponder.tasks.arithmetic import small_problem
from ponder.tasks.item import TaskItem, make_item, question_split
from ponder.tasks.registry import generate

TEMPLATE_SETS: tuple[str, ...] = ("train", "eval")
PLAIN_FAMILY = "arithmetic"  # small sums like "What is 2+3?" are stamped as arithmetic items

# Every template takes named fields parsed out of the canonical question. "{e}" is an arithmetic
# expression, "{eq}" an equation, "{facts}"/"{story}"/"{body}" the given sentences, "{ask}" the
# family's question sentence, "{who}" the asked attribute, "{items}" a counted list.
_TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "arithmetic": {
        "train": (
            "Compute {e}.",
            "Calculate {e}",
            "{e} = ?",
            "Evaluate {e}.",
            "Find {e}.",
            "{e}",
            "What does {e} equal?",
            "Work out {e}.",
        ),
        "eval": (
            "What is {c}?",
            "How much is {e}?",
            "Please calculate {e}.",
            "{e} equals what?",
            "Give the value of {e}.",
            "What's {e}?",
            "what is {e}",
        ),
    },
    "equations": {
        "train": (
            "Find x: {eq}",
            "Solve {eq}",
            "{eq}. Solve for x.",
            "Find x if {eq}.",
            "x = ? when {eq}",
        ),
        "eval": (
            "What is x if {eq}?",
            "Solve the equation {eq} for x.",
            "{eq}, what is x?",
            "Work out x: {eq}",
        ),
    },
    "ordering": {
        "train": (
            "{facts} Who is the {who} one?",
            "{facts} Which of them is the {who}?",
            "Who is the {who}? {facts}",
            "{facts} Name the {who} person.",
        ),
        "eval": (
            "{facts} Which person is the {who}?",
            "{facts} Tell me who is the {who}.",
            "Facts: {facts} Question: who is the {who}?",
            "{facts} who's the {who}?",
        ),
    },
    "counting": {
        "train": (
            "Here is a list: {items}. {ask}",
            "{items}. {ask}",
            "{ask} List: {items}.",
            "Items: {items}. {ask}",
        ),
        "eval": (
            "Look at this list: {items}. {ask}",
            "Consider the list {items}. {ask}",
            "{ask} The list is {items}.",
            "Words: {items}. {ask}",
        ),
    },
    "word_problems": {
        "train": (
            "{story} {ask}",
            "Story: {story} Question: {ask}",
            "{story} Answer this: {ask}",
            "Read carefully. {story} {ask}",
        ),
        "eval": (
            "Here is a story. {story} {ask}",
            "{story} Can you tell me: {ask}",
            "Problem: {story} {ask}",
            "{story} Please answer. {ask}",
        ),
    },
    "boxes": {
        "train": (
            "{body} {ask}",
            "Puzzle: {body} {ask}",
            "{body} Think it through. {ask}",
        ),
        "eval": (
            "Here is a puzzle. {body} {ask}",
            "{body} Please solve it. {ask}",
            "Riddle: {body} {ask}",
        ),
    },
}
# A wrapper around the (maybe rewritten) question, drawn half the time.
_WRAPPERS: dict[str, tuple[str, ...]] = {
    "train": ("Question: {q}", "{q} Think it through.", "Please answer: {q}", "{q} Put the answer in a box."),
    "eval": ("Q: {q}", "Can you solve this? {q}", "{q} What is the answer?", "Here is a problem. {q}"),
}

_ARITHMETIC = re.compile(r"^What is (?P<e>.+)\?$")
_EQUATION = re.compile(r"^Solve for x: (?P<eq>.+)$")
_ORDERING = re.compile(r"^(?P<facts>.+\.) Who is the (?P<who>[^?]+)\?$")
_COUNTING = re.compile(r"^List: (?P<items>.+)\. (?P<ask>How many [^?]+\?)$")
_WORD_PROBLEM = re.compile(r"^(?P<story>.+\.) (?P<ask>How many [^?]+\?)$")
_BOXES = re.compile(r"^(?P<body>.+ Every label is wrong\..*?) (?P<ask>(?:Which|What) [^.]*\?.*)$")

_Parser = Callable[[str], dict[str, str] | None]


def _match(pattern: re.Pattern[str]) -> _Parser:
    def parse(question: str) -> dict[str, str] | None:
        found = pattern.match(question)
        return found.groupdict() if found else None

    return parse


def _parse_arithmetic(question: str) -> dict[str, str] | None:
    found = _ARITHMETIC.match(question)
    if not found:
        return None
    expression = found["e"]
    return {"e": expression, "c": expression.replace(" ", "")}


_PARSERS: dict[str, _Parser] = {
    "arithmetic": _parse_arithmetic,
    "equations": _match(_EQUATION),
    "ordering": _match(_ORDERING),
    "counting": _match(_COUNTING),
    "word_problems": _match(_WORD_PROBLEM),
    "boxes": _match(_BOXES),
}


def check_template_set(template_set: str) -> str:
    if template_set not in TEMPLATE_SETS:
        raise InvalidRequestError(
            f"unknown template set {template_set!r}; valid: {', '.join(TEMPLATE_SETS)}",
            param="template_set",
        )
    return template_set


def templates(family: str, template_set: str) -> tuple[str, ...]:
    return _TEMPLATES[family][check_template_set(template_set)] + _WRAPPERS[template_set]


def rephrase(family: str, question: str, template_set: str, rng: random.Random) -> str:
    """``question`` (a canonical task question of ``family``) in a template of ``template_set``."""
    check_template_set(template_set)
    fields = _PARSERS[family](question)
    if fields is None:
        raise InvalidRequestError(f"not a canonical {family} question: {question!r}", param="question")
    text = rng.choice(_TEMPLATES[family][template_set]).format(**fields)
    if family in ("arithmetic", "equations") and "{c}" not in text and rng.random() < 0.5:
        text = _compact(text, fields)  # "47+38", "5x+16=76": users drop the spaces
    if rng.random() < 0.5:
        text = rng.choice(_WRAPPERS[template_set]).format(q=text)
    return text


def paraphrase_item(item: TaskItem, template_set: str, rng: random.Random) -> TaskItem:
    """The item with its question rephrased; answer and worked solution unchanged."""
    question = rephrase(item.family, item.question, template_set, rng)
    return TaskItem(
        family=item.family,
        difficulty=item.difficulty,
        question=question,
        answer=item.answer,
        solution=item.solution,
        id=item.id + "-p",
    )


def small_arithmetic_item(rng: random.Random, *, split: str) -> TaskItem:
    """A plain small sum ("What is 2 + 3?": numbers 0-20, one or two operations) of ``split``."""
    while True:
        problem = small_problem(rng)
        if question_split(problem.question) == split:
            return make_item(PLAIN_FAMILY, "easy", problem)


def _compact(text: str, fields: dict[str, str]) -> str:
    for key in ("e", "eq"):
        if key in fields and fields[key] in text:
            text = text.replace(fields[key], fields[key].replace(" ", ""))
    return text


def paraphrased_test_items(family: str, difficulty: str, n: int, *, seed: int = 0) -> list[TaskItem]:
    """The robustness eval set of one cell: ``n`` test-split items in `eval` phrasings. In
    arithmetic/easy every second item is a plain small sum ("What is 2+3?") instead."""
    items = generate(family, difficulty, n, split="test", seed=seed)
    rng = random.Random(f"ponder.paraphrase|{family}|{difficulty}|{seed}")
    out = []
    for index, item in enumerate(items):
        if family == PLAIN_FAMILY and difficulty == "easy" and index % 2:
            item = small_arithmetic_item(rng, split="test")
        out.append(paraphrase_item(item, "eval", rng))
    return out
