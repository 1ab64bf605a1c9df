"""The mislabeled-boxes puzzle (every label is wrong) and its larger n-box variants.

Every size is solved by the same mechanical procedure: list each box's possible contents (all
kinds but its label), narrow them with the clues, then repeat two rules until every box is
fixed: a box with one option left holds it ("Only option"), and a kind that fits one box only
is in that box ("Only place"). The generator adds true clues until that procedure finishes, so
the answer is always unique.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ponder.tasks.family import TaskFamily, checked_solution, route_rng
from ponder.tasks.item import Problem
from ponder.tasks.words import FRUITS, NUMBER_WORDS, join_with_and, plural

MIXED = "mixed"
_BOX_NAMES = "ABCDEFGH"
_SIZES = {"easy": (3, 3), "medium": (4, 4), "hard": (5, 6)}


@dataclass(frozen=True)
class _Clue:
    box: str
    fruit: str  # the fruit drawn from the box, or the kind it does not hold
    is_draw: bool

    def sentence(self) -> str:
        if self.is_draw:
            return f"A fruit drawn from box {self.box} is {_article(self.fruit)} {self.fruit}."
        return f"Box {self.box} does not hold {plural(self.fruit)}."

    def allowed(self, kinds: list[str]) -> list[str]:
        if self.is_draw:
            return [kind for kind in kinds if kind in (plural(self.fruit), MIXED)]
        return [kind for kind in kinds if kind != plural(self.fruit)]


class BoxesFamily(TaskFamily):
    name = "boxes"
    description = "Mislabeled boxes: every label is wrong; deduce each box's contents."

    def make(self, difficulty: str, rng: random.Random) -> Problem:
        low, high = _SIZES[difficulty]
        size = rng.randint(low, high)
        boxes = sorted(rng.sample(_BOX_NAMES, size))
        kinds = [plural(fruit) for fruit in rng.sample(FRUITS, size - 1)] + [MIXED]
        labels = dict(zip(boxes, rng.sample(kinds, size), strict=True))
        contents = _random_derangement(boxes, labels, rng)
        classic = difficulty == "easy"
        clues = _classic_clue(labels, contents, rng) if classic else _clues(labels, contents, rng)
        draw_box = clues[0].box if classic else None
        answer = _answer(contents, draw_box)
        question = _question(boxes, labels, clues, classic)
        work = _work_lines(boxes, labels, clues, classic, contents, route_rng(question))
        check = _check_lines(boxes, labels, clues, classic, contents)
        return Problem(question=question, answer=answer, solution=checked_solution(work, answer, check))


def _article(fruit: str) -> str:
    return "an" if fruit[0] in "aeiou" else "a"


def _random_derangement(boxes: list[str], labels: dict[str, str], rng: random.Random) -> dict[str, str]:
    while True:
        shuffled = rng.sample([labels[box] for box in boxes], len(boxes))
        if all(kind != labels[box] for box, kind in zip(boxes, shuffled, strict=True)):
            return dict(zip(boxes, shuffled, strict=True))


def _true_draw(box: str, contents: dict[str, str], rng: random.Random) -> _Clue:
    kind = contents[box]
    fruits = [k[:-1] for k in contents.values() if k != MIXED]
    return _Clue(box, kind[:-1] if kind != MIXED else rng.choice(fruits), is_draw=True)


def _classic_clue(labels: dict[str, str], contents: dict[str, str], rng: random.Random) -> list[_Clue]:
    """The one draw that solves the classic puzzle: from the box labelled mixed."""
    mixed_label_box = next(box for box, label in labels.items() if label == MIXED)
    return [_true_draw(mixed_label_box, contents, rng)]


def _clues(labels: dict[str, str], contents: dict[str, str], rng: random.Random) -> list[_Clue]:
    clues: list[_Clue] = []
    while not _is_solved(_propagate(_initial_options(labels, clues))[0]):
        candidate = _random_true_clue(labels, contents, rng)
        before = _propagate(_initial_options(labels, clues))[0]
        after = _propagate(_initial_options(labels, [*clues, candidate]))[0]
        if after != before:  # only clues that teach something new
            clues.append(candidate)
    return clues


def _random_true_clue(labels: dict[str, str], contents: dict[str, str], rng: random.Random) -> _Clue:
    box = rng.choice(sorted(labels))
    if rng.random() < 0.5:
        return _true_draw(box, contents, rng)
    wrong = [k for k in contents.values() if k not in (contents[box], labels[box], MIXED)]
    if not wrong:
        return _true_draw(box, contents, rng)
    return _Clue(box, rng.choice(sorted(wrong))[:-1], is_draw=False)


def _initial_options(labels: dict[str, str], clues: list[_Clue]) -> dict[str, list[str]]:
    kinds = list(labels.values())
    options = {box: [k for k in _kind_order(kinds) if k != label] for box, label in labels.items()}
    for clue in clues:
        options[clue.box] = clue.allowed(options[clue.box])
    return options


def _kind_order(kinds: list[str]) -> list[str]:
    """Fruits alphabetically, mixed last: one fixed order for every listing of options."""
    return sorted(k for k in kinds if k != MIXED) + [MIXED]


def _is_solved(options: dict[str, list[str]]) -> bool:
    return all(len(kinds) == 1 for kinds in options.values())


def _propagate(options: dict[str, list[str]]) -> tuple[dict[str, list[str]], list[str]]:
    """Apply the two rules until nothing changes; returns the options and the worked lines.

    The first applicable rule fires (Only option before Only place, boxes and kinds in order).
    Letting any applicable rule fire is another valid route, but a model then has to find an
    "Only place" among all boxes far more often; models trained on it often failed the classic
    puzzle (below 60% in four of seven candidates, docs/model.md), so the routes vary the clue
    order only.
    """
    options = {box: list(kinds) for box, kinds in options.items()}
    fixed: set[str] = set()
    lines: list[str] = []
    while True:
        open_boxes = [box for box in sorted(options) if box not in fixed]
        single = next((box for box in open_boxes if len(options[box]) == 1), None)
        if single is not None:
            kind = options[single][0]
            fixed.add(single)
            lines.append(f"Only option: {single}={kind}")
            lines.append(_remove_line(kind, single, options, fixed))
            continue
        place = _only_place(open_boxes, options)
        if place is None:
            return options, lines
        box, kind = place
        options[box] = [kind]
        fixed.add(box)
        lines.append(f"Only place for {kind}: {box}={kind}")


def _remove_line(kind: str, owner: str, options: dict[str, list[str]], fixed: set[str]) -> str:
    changed = []
    for box in sorted(options):
        if box != owner and box not in fixed and kind in options[box]:
            options[box].remove(kind)
            changed.append(f"{box}: {', '.join(options[box]) or 'nothing'}")
    return f"Remove {kind}: " + ("; ".join(changed) if changed else "none")


def _only_place(open_boxes: list[str], options: dict[str, list[str]]) -> tuple[str, str] | None:
    open_kinds = _kind_order(sorted({k for box in open_boxes for k in options[box]}))
    for kind in open_kinds:
        holders = [box for box in open_boxes if kind in options[box]]
        if len(holders) == 1:
            return holders[0], kind
    return None


def _answer(contents: dict[str, str], draw_box: str | None) -> str:
    parts = [f"{box}={kind}" for box, kind in sorted(contents.items())]
    return ", ".join(([f"draw={draw_box}"] if draw_box else []) + parts)


def _question(boxes: list[str], labels: dict[str, str], clues: list[_Clue], classic: bool) -> str:
    count = NUMBER_WORDS[len(boxes)].capitalize()
    sentences = [f"{count} boxes {join_with_and(boxes)} hold fruit."]
    sentences += [f"Box {box} is labelled {labels[box]}." for box in boxes]
    sentences.append("Every label is wrong.")
    if classic:
        fruit = clues[0].fruit
        sentences.append("You may draw one fruit from one box without looking inside.")
        sentences.append("Which box should you draw from?")
        sentences.append(f"If the fruit is {_article(fruit)} {fruit}, what does each box hold?")
    else:
        sentences += [clue.sentence() for clue in clues]
        sentences.append("What does each box hold?")
    return " ".join(sentences)


def _work_lines(
    boxes: list[str],
    labels: dict[str, str],
    clues: list[_Clue],
    classic: bool,
    contents: dict[str, str],
    rng: random.Random,
) -> list[str]:
    """List the options, narrow them clue by clue in a random order, then apply the rules."""
    options = _initial_options(labels, [])
    lines = ["Every label is wrong, so:"]
    lines += [f"{box} (label {labels[box]}): {', '.join(options[box])}" for box in boxes]
    if classic:
        box = clues[0].box
        lines.append(f"Draw from {box}: it is labelled mixed, so it holds one kind only.")
    for clue in rng.sample(clues, len(clues)):
        options[clue.box] = clue.allowed(options[clue.box])
        if clue.is_draw:
            rule = f"{clue.box} is {plural(clue.fruit)} or mixed"
            lines.append(f"Clue: {_article(clue.fruit)} {clue.fruit} from {clue.box}, so {rule}.")
        else:
            lines.append(f"Clue: {clue.box} is not {plural(clue.fruit)}.")
        lines.append(f"{clue.box}: {', '.join(options[clue.box])}")
    final, propagation = _propagate(options)
    # Every route must end in the gold assignment; the generator only proves it for one.
    if final != {box: [kind] for box, kind in contents.items()}:
        raise AssertionError(f"boxes route did not reach the answer: {final} vs {contents}")
    return lines + propagation


def _check_lines(
    boxes: list[str],
    labels: dict[str, str],
    clues: list[_Clue],
    classic: bool,
    contents: dict[str, str],
) -> list[str]:
    """Put the assignment back into the question: each label is wrong, each clue holds."""
    lines = [f"{box} (label {labels[box]}) = {contents[box]}, ok" for box in boxes]
    for clue in clues:
        held = f"{clue.box}={contents[clue.box]}"
        if clue.is_draw:
            lines.append(f"{_article(clue.fruit)} {clue.fruit} from {clue.box}: {held}, ok")
        else:
            lines.append(f"{clue.box} is not {plural(clue.fruit)}: {held}, ok")
    if classic:
        box = clues[0].box
        lines.append(f"draw={box} (label mixed): {box}={contents[box]}, one kind, ok")
    return lines
