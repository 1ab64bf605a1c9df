"""`ponder revote`: vote rules re-scored on recorded branches, subsets, filters, errors."""

from __future__ import annotations

import json

import pytest
from tools.revote.__main__ import build_parser, main, run_revote_command
from tools.revote.rules import VoteRule, default_rules, parse_rule, revote

from ponder.errors import InvalidRequestError


def item(item_id, gold, answers, logprobs=None, confidences=None, correct=False):
    n = len(answers)
    return {
        "family": "counting",
        "difficulty": "hard",
        "item_id": item_id,
        "gold": gold,
        "correct": correct,
        "branch_answers": answers,
        "branch_mean_logprobs": logprobs or [-0.5] * n,
        "branch_confidences": confidences or [None] * n,
        "branch_tokens": [100] * n,
    }


def test_parse_rule_reads_weights_filters_and_sample_counts():
    assert parse_rule("majority") == VoteRule()
    assert parse_rule("confidence:keep_top=0.1") == VoteRule("confidence", keep_top=0.1)
    assert parse_rule(" logprob:keep_top=0.5, rank=logprob ") == VoteRule("logprob", 0.5, "logprob")
    assert parse_rule("majority:n=4") == VoteRule(samples=4)
    assert parse_rule("confidence:keep_top=0.1").label == "confidence:keep_top=0.1,rank=confidence"
    assert VoteRule(samples=4).label == "majority:n=4"
    stop = parse_rule("confidence:stop=beta,consensus=0.9,warmup=2")
    assert stop == VoteRule("confidence", stop="beta", consensus=0.9, warmup=2)
    assert stop.label == "confidence:stop=beta,consensus=0.9,warmup=2"


@pytest.mark.parametrize(
    "text, message",
    [
        ("plurality", "unknown vote weight 'plurality'"),
        ("majority:keep_top=0", r"keep_top must be in \(0, 1\]"),
        ("majority:keep_top=1.5", r"keep_top must be in \(0, 1\]"),
        ("majority:keep_top=half", "keep_top must be a number"),
        ("majority:n=0", "n must be >= 1"),
        ("majority:n=2.5", "n must be a number"),
        ("majority:rank=length", "rank must be one of confidence, logprob"),
        ("majority:window=64", "unknown key 'window'"),
        ("majority:n", "expected key=value"),
        ("majority:stop=early", "stop must be one of none, share, beta"),
        ("majority:stop=beta,consensus=0", r"consensus must be in \(0, 1\]"),
        ("majority:stop=beta,warmup=0", "warmup must be >= 1"),
        ("majority:stop=share,keep_top=0.5", "keep_top and stop do not combine"),
    ],
)
def test_parse_rule_rejects_bad_rules(text, message):
    with pytest.raises(InvalidRequestError, match=message) as error:
        parse_rule(text)
    assert error.value.param == "rule"


def test_majority_ties_go_to_the_surer_answer_and_missing_answers_cast_no_vote():
    tie = item("a", "7", ["7", "8", None, "8", "7"], logprobs=[-0.2, -0.9, -0.1, -0.9, -0.2])
    outcome = revote("sc", [tie], VoteRule())
    assert outcome.scores == {"counting|hard|a": 1.0} and outcome.voters == 5
    flipped = item("a", "7", ["7", "8", None, "8", "7"], logprobs=[-0.9, -0.2, -0.1, -0.2, -0.9])
    assert revote("sc", [flipped], VoteRule()).accuracy == 0.0
    nobody = item("b", "7", [None, None])
    outcome = revote("sc", [nobody], VoteRule())
    assert outcome.accuracy == 0.0 and outcome.pass_at == 0.0


def test_weights_and_filters_change_the_winner():
    # Three unsure voters for 8 against two sure ones for 7.
    recorded = item(
        "a",
        "7",
        ["8", "7", "8", "7", "8"],
        logprobs=[-2.0, -0.1, -2.0, -0.1, -2.0],
        confidences=[1.0, 9.0, 1.0, 9.0, 1.0],
    )
    assert revote("sc", [recorded], VoteRule()).accuracy == 0.0
    assert revote("sc", [recorded], VoteRule("confidence")).accuracy == 1.0
    assert revote("sc", [recorded], VoteRule("logprob")).accuracy == 1.0
    kept = revote("sc", [recorded], VoteRule(keep_top=0.4))  # the two surest, by confidence
    assert (kept.accuracy, kept.voters, kept.pass_at) == (1.0, 2, 1.0)
    by_logprob = revote("sc", [recorded], VoteRule(keep_top=0.2, rank="logprob"))
    assert (by_logprob.accuracy, by_logprob.voters) == (1.0, 1)
    unsure = revote("sc", [recorded], VoteRule("majority", keep_top=0.6, rank="logprob"))
    assert unsure.voters == 3 and unsure.accuracy == 1.0  # 7, 7 and the first unsure 8


def test_stop_rules_read_branches_in_order_until_the_vote_is_decided():
    recorded = item("a", "7", ["7", "7", "7", "8", "8", "8"])
    recorded["branch_tokens"] = [10, 20, 30, 40, 50, 60]
    beta = revote("sc", [recorded], VoteRule(stop="beta", consensus=0.9, warmup=2))
    assert (beta.voters, beta.tokens, beta.accuracy) == (3, 60, 1.0)  # 2-0 is 7/8 sure, 3-0 15/16
    share = revote("sc", [recorded], VoteRule(stop="share", consensus=0.95, warmup=2))
    assert (share.voters, share.tokens) == (2, 30)  # 2-0 is a share of 1
    never = revote("sc", [recorded], VoteRule(stop="beta", consensus=0.99, warmup=2))
    # Never decided: all 6 read; 3-3 with equal log-probabilities goes to the earlier answer.
    assert (never.voters, never.tokens, never.accuracy) == (6, 210, 1.0)
    full = revote("sc", [recorded], VoteRule())
    assert (full.voters, full.tokens) == (6, 210)


def test_fewer_samples_average_over_every_subset_when_there_are_few():
    # gold 7 among [7, 7, 8]; an 8 is surer than a 7, so a 1-1 split goes to 8.
    recorded = item("a", "7", ["7", "7", "8"], logprobs=[-0.5, -0.5, -0.1])
    one = revote("sc", [recorded], VoteRule(samples=1))
    assert one.accuracy == pytest.approx(2 / 3) and one.pass_at == pytest.approx(2 / 3)
    two = revote("sc", [recorded], VoteRule(samples=2))  # {7,7} right; {7,8} twice wrong
    assert two.accuracy == pytest.approx(1 / 3) and two.pass_at == 1.0
    assert revote("sc", [recorded], VoteRule(samples=3)).accuracy == 1.0


def test_random_subsets_are_seeded_per_problem():
    answers = ["7"] * 5 + ["8"] * 4 + [None] * 7
    recorded = [item(str(i), "7", answers, logprobs=[-0.1 * (j % 3) for j in range(16)]) for i in range(3)]
    rule = VoteRule(samples=5)
    first = revote("sc", recorded, rule, subsets=8, seed=1)
    assert first == revote("sc", recorded, rule, subsets=8, seed=1)
    assert 0.0 < first.accuracy < 1.0
    assert first.scores != revote("sc", recorded, rule, subsets=8, seed=2).scores


def test_rules_needing_what_was_not_recorded_fail_clearly():
    recorded = [item("a", "7", ["7", "8"])]
    with pytest.raises(InvalidRequestError, match="needs branch confidences"):
        revote("sc", recorded, VoteRule("confidence"))
    with pytest.raises(InvalidRequestError, match="n=3 is more than the 2 branches"):
        revote("sc", recorded, VoteRule(samples=3))
    old = [{"family": "counting", "difficulty": "hard", "item_id": "a", "gold": "7", "branch_answers": ["7"]}]
    with pytest.raises(InvalidRequestError, match="no per-branch records"):
        revote("sc", old, VoteRule())
    with pytest.raises(InvalidRequestError, match="no items"):
        revote("sc", [], VoteRule())


def test_default_rules_follow_what_was_recorded():
    without = [rule.label for rule in default_rules([item("a", "7", ["7"] * 16)])]
    assert without == [
        "majority:n=1",
        "majority:n=2",
        "majority:n=4",
        "majority:n=8",
        "majority",
        "logprob",
        "majority:keep_top=0.5,rank=logprob",
        "majority:stop=beta,consensus=0.9,warmup=4",
        "majority:stop=share,consensus=0.95,warmup=4",
    ]
    with_confidence = default_rules([item("a", "7", ["7"] * 6, confidences=[1.0] * 6)])
    labels = [rule.label for rule in with_confidence]
    assert labels[:4] == ["majority:n=1", "majority:n=2", "majority:n=4", "majority"]
    assert "confidence" in labels and "confidence:keep_top=0.1,rank=confidence" in labels


def run_cli(argv: list[str]) -> int:
    assert argv[0] == "revote"
    return run_revote_command(build_parser().parse_args(argv[1:]))


def write_run(path, strategies):
    path.write_text(json.dumps({"model": "m", "split": "test", "config": {}, "strategies": strategies}))
    return str(path)


def test_revote_cli_prints_and_writes_rows_against_greedy(tmp_path, capsys):
    greedy = [item(str(i), "7", ["7" if i < 2 else "8"], correct=i < 2) for i in range(4)]
    sc = [item(str(i), "7", ["7", "7", "8"] if i < 3 else ["8", "8", "7"]) for i in range(4)]
    run = write_run(
        tmp_path / "run.json", [{"label": "greedy", "items": greedy}, {"label": "sc3", "items": sc}]
    )
    out = tmp_path / "rows.json"
    assert run_cli(["revote", run, "--rule", "majority", "--rule", "majority:n=1", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "sc3" in table and "majority:n=1" in table and "vs greedy" in table
    rows = json.loads(out.read_text())
    assert [row["rule"] for row in rows] == ["majority", "majority:n=1"]
    full = rows[0]
    assert full["accuracy"] == 0.75 and full["reference"] == "greedy"
    assert full["diff"] == pytest.approx(0.25)  # 3 of 4 against greedy's 2 of 4
    assert full["ci95_low"] < full["diff"] < full["ci95_high"]
    assert rows[1]["accuracy"] == pytest.approx((2 / 3 * 3 + 1 / 3) / 4)


def test_revote_cli_defaults_to_every_multi_branch_strategy(tmp_path, capsys):
    greedy = [item("0", "7", ["7"], correct=True)]
    sc = [item("0", "7", ["7", "8", "7", "7"])]
    run = write_run(
        tmp_path / "run.json", [{"label": "greedy", "items": greedy}, {"label": "sc4", "items": sc}]
    )
    assert run_cli(["revote", run]) == 0
    table = capsys.readouterr().out
    assert "greedy" not in table.split("\n", 2)[2].split()[0]  # greedy is the reference, not a row
    assert "majority:n=2" in table and "majority:keep_top=0.5,rank=logprob" in table


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--strategy", "nope"], "--strategy nope not in the run"),
        (["--strategy", "greedy"], "greedy recorded fewer than 2 branches"),
        (["--reference", "nope"], "--reference 'nope' not in the run"),
        (["--subsets", "0"], "--subsets must be >= 1"),
        (["--rule", "vote"], "unknown vote weight"),
        (["--rule", "confidence"], "needs branch confidences"),
    ],
)
def test_revote_cli_rejects_bad_arguments(tmp_path, argv, message):
    run = write_run(
        tmp_path / "run.json",
        [
            {"label": "greedy", "items": [item("0", "7", ["7"])]},
            {"label": "sc", "items": [item("0", "7", ["7", "8"])]},
        ],
    )
    with pytest.raises(InvalidRequestError, match=message):
        run_cli(["revote", run, *argv])


def test_revote_cli_rejects_files_that_are_not_eval_reports(tmp_path):
    with pytest.raises(InvalidRequestError, match="no such file"):
        run_cli(["revote", str(tmp_path / "missing.json")])
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(InvalidRequestError, match="is not JSON"):
        run_cli(["revote", str(tmp_path / "bad.json")])
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(InvalidRequestError, match="not a `ponder eval --json` report"):
        run_cli(["revote", str(tmp_path / "list.json")])
    only_greedy = write_run(tmp_path / "greedy.json", [{"label": "greedy", "items": [item("0", "7", ["7"])]}])
    with pytest.raises(InvalidRequestError, match="no strategy in the run recorded several branches"):
        run_cli(["revote", only_greedy])


def test_the_tool_runs_and_reports_errors_as_exit_2(tmp_path, capsys):
    sc = [item("0", "7", ["7", "8", "7"])]
    run = write_run(tmp_path / "run.json", [{"label": "sc", "items": sc}])
    assert main([run, "--rule", "majority"]) == 0
    assert "sc        majority  1     3.0     300  100.0  100.0" in capsys.readouterr().out
    assert main([run, "--rule", "majority:keep_top=2"]) == 2
    assert "revote: error: keep_top must be in (0, 1], got 2" in capsys.readouterr().err


def test_runs_of_different_item_sets_pool_and_repeats_are_refused(tmp_path, capsys):
    first = write_run(tmp_path / "a.json", [{"label": "sc", "items": [item("0", "7", ["7", "7", "8"])]}])
    second = write_run(tmp_path / "b.json", [{"label": "sc", "items": [item("1", "7", ["8", "8", "7"])]}])
    out = tmp_path / "rows.json"
    assert run_cli(["revote", first, second, "--rule", "majority", "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())
    assert (row["num_items"], row["accuracy"]) == (2, 0.5)
    with pytest.raises(InvalidRequestError, match=r"'sc' has problem counting\|hard\|0 more than once"):
        run_cli(["revote", first, first])
