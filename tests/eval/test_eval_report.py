"""`ponder eval` pieces without a model: --strategy parsing, summaries, table, plot."""

from __future__ import annotations

import dataclasses

import pytest

from ponder.errors import InvalidRequestError
from ponder.eval.compare import compare, compare_all
from ponder.eval.plot import plot_accuracy_vs_tokens
from ponder.eval.report import format_table, summarize
from ponder.eval.runner import ItemResult, StrategyEval
from ponder.reasoning.specs import AnswerStabilitySpec, ConfidenceSpec, EnsembleSpec, SelfConsistencySpec
from ponder.reasoning.strategy_args import parse_strategy_arg


def test_strategy_arguments():
    assert parse_strategy_arg("self_consistency:n=16") == ("self_consistency:n=16", SelfConsistencySpec(n=16))
    label, spec = parse_strategy_arg("confidence:n=16,warmup=4,keep_top=0.5,wave=none,label=deepconf")
    assert label == "deepconf" and spec == ConfidenceSpec(n=16, warmup=4, keep_top=0.5, wave=None)
    assert parse_strategy_arg("ensemble:models=small|big")[1] == EnsembleSpec(models=("small", "big"))
    label, spec = parse_strategy_arg('{"type": "answer_stability", "probe_text": "x", "label": "dyn"}')
    assert label == "dyn" and spec == AnswerStabilitySpec(probe_text="x")
    assert parse_strategy_arg('{"type": "greedy"}')[0] == "greedy"


@pytest.mark.parametrize(
    ("text", "param"),
    [
        ("self_consistency:n", "strategy"),
        ("{not json", "strategy"),
        ("self_consistency:n=0", "reasoning_strategy.n"),
        ("nonsense", "reasoning_strategy.type"),
    ],
)
def test_bad_strategy_arguments(text, param):
    with pytest.raises(InvalidRequestError) as caught:
        parse_strategy_arg(text)
    assert caught.value.param == param


def item(
    family: str, correct: bool, generated: int, reasoning: int, stopped: int = 0, branches=("1", "2")
) -> ItemResult:
    return ItemResult(
        family=family,
        difficulty="hard",
        item_id=f"{family}{generated}",
        gold="1",
        answer="1" if correct else "2",
        correct=correct,
        reasoning_tokens=reasoning,
        answer_tokens=generated - reasoning,
        probe_tokens=0,
        generated_tokens=generated,
        num_branches=4,
        num_stopped_branches=stopped,
        latency_s=0.5,
        finish_reason="stop",
        branch_answers=list(branches),
        any_branch_correct="1" in branches,
    )


def test_summary_rows_and_table(tmp_path):
    evaluation = StrategyEval(
        label="sc",
        spec={"type": "self_consistency"},
        items=[
            item("counting", True, 100, 80),
            item("counting", False, 300, 240, 2, branches=("2", "2", None)),
            item("boxes", True, 50, 40),
        ],
        wall_time_s=12.5,
    )
    rows = summarize(evaluation)
    counting, boxes, overall = rows
    assert (counting.family, counting.num_items, counting.accuracy) == ("counting", 2, 0.5)
    assert counting.mean_generated_tokens == 200 and counting.mean_reasoning_tokens == 160
    assert counting.mean_stopped_branches == 1 and counting.wall_time_s is None
    assert boxes.accuracy == 1.0
    assert counting.pass_at_n == 0.5 and counting.mean_distinct_answers == 2  # {"1","2"}, {"2",None}
    assert overall.family == "all" and overall.accuracy == pytest.approx(2 / 3)
    assert overall.mean_generated_tokens == pytest.approx(150) and overall.wall_time_s == 12.5
    table = format_table(rows)
    assert "acc%" in table and "66.7" in table and "12.5" in table
    assert len(table.splitlines()) == 2 + len(rows)
    png = plot_accuracy_vs_tokens(rows, tmp_path / "plot.png", title="test")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_paired_comparison_counts_wins_and_losses_with_an_interval():
    def evaluation(label, outcomes, tokens):
        items = [
            dataclasses.replace(item(family, correct, tokens, tokens), item_id=family)
            for family, correct in outcomes
        ]
        return StrategyEval(label=label, spec={}, items=items, wall_time_s=1.0)

    families = ["a", "b", "c", "d"]
    reference = evaluation("sc16", zip(families, [True, True, False, False]), 1000)
    # listed in another order, and one problem the reference never saw
    cheaper = evaluation("conf", zip(families[::-1] + ["e"], [True, True, False, True, True]), 400)
    result = compare(cheaper, reference)
    assert (result.num_items, result.won, result.lost) == (4, 2, 1)
    assert result.accuracy_diff == pytest.approx(0.25) and result.tokens_change == pytest.approx(-0.6)
    # per-problem differences 1, 1, -1, 0: standard deviation 0.957, standard error 0.479
    assert result.ci95_low == pytest.approx(0.25 - 1.96 * 0.4787, abs=1e-3)
    assert result.ci95_high == pytest.approx(0.25 + 1.96 * 0.4787, abs=1e-3)
    assert "conf vs sc16 (4 paired problems): accuracy +25.0 points" in result.describe()
    assert [c.strategy for c in compare_all([reference, cheaper], "sc16")] == ["conf"]
    with pytest.raises(InvalidRequestError) as caught:
        compare_all([reference, cheaper], "greedy")
    assert caught.value.param == "reference" and "sc16, conf" in caught.value.message
    with pytest.raises(InvalidRequestError, match="share no problems"):
        compare(evaluation("other", [("z", True)], 10), reference)
