"""Counting and ordering solutions take random routes and check their result by another one."""

from __future__ import annotations

import re

import pytest

from ponder.tasks import generate


def _work_and_check(solution: str) -> tuple[str, str]:
    work, _, rest = solution.partition("\nCheck:\n")
    return work, rest


@pytest.mark.parametrize("difficulty", ["easy", "hard"])
def test_counting_routes_vary_and_every_walk_counts_right(difficulty: str) -> None:
    headings = set()
    for item in generate("counting", difficulty, 40, split="train", seed=2):
        work, check = _work_and_check(item.solution)
        assert f"Result: {item.answer}" in work
        assert check.endswith(f"Check gives {item.answer} too.\nAnswer: {item.answer}")
        headings.add(work.splitlines()[0])
        assert work.splitlines()[0] != check.splitlines()[0]  # the check takes another route
        items = re.search(r"List: (.*)\. How", item.question).group(1).split(", ")
        walks = re.findall(
            r"Count (.+?)(?:, from the (first|last) item| alone):\n((?:\w+ (?:yes|no) \d+\n)+)", item.solution
        )
        assert walks
        for targets, direction, body in walks:
            rows = [row.split() for row in body.strip().splitlines()]
            expected = items[::-1] if direction == "last" else items
            assert [row[0] for row in rows] == expected
            wanted = targets.split(" or ")
            assert int(rows[-1][2]) == sum(name in wanted for name in items)
    assert len({h.split(",")[-1] for h in headings}) >= 2


@pytest.mark.parametrize("difficulty", ["medium", "hard"])
def test_ordering_routes_vary_and_the_check_counts_from_the_other_end(difficulty: str) -> None:
    starts = set()
    for item in generate("ordering", difficulty, 40, split="train", seed=2):
        work, check = _work_and_check(item.solution)
        start = next(line for line in work.splitlines() if line.startswith("Never on the"))
        check_start = next(line for line in check.splitlines() if line.startswith("Never on the"))
        assert start.split(":")[0] != check_start.split(":")[0]
        starts.add(start.split(":")[0])
        counts = [line for line in item.solution.splitlines() if line.startswith("Count from")]
        assert len(counts) == 2
        assert all(line.endswith(f" {item.answer}") for line in counts)
        size, position, other = map(int, re.search(r"(\d+) people, so (\d+) .* = (\d+) from", check).groups())
        assert other == size + 1 - position
    assert starts == {"Never on the left", "Never on the right"}
