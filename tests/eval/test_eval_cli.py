"""`ponder eval` end to end on a tiny random checkpoint: table, JSON, PNG, errors."""

from __future__ import annotations

import argparse
import dataclasses
import json

import pytest
from tools.revote.rules import VoteRule, problem_key, revote

from ponder.cli.eval import add_parser as add_eval_parser


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ponder")
    add_eval_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.handler(args)


def test_eval_writes_table_json_and_plot(qwen3_ckpt, tmp_path, capsys):
    json_path, png_path = tmp_path / "eval.json", tmp_path / "eval.png"
    code = run_cli(
        [
            "eval",
            "--model",
            str(qwen3_ckpt),
            "--tasks",
            "counting,ordering",
            "--difficulty",
            "easy",
            "--limit",
            "2",
            "--max-tokens",
            "12",
            "--strategy",
            "greedy",
            "--strategy",
            "self_consistency:n=3,label=sc3",
            "--strategy",
            "confidence:n=4,warmup=2,wave=1,label=conf",
            "--reference",
            "greedy",
            "--json",
            str(json_path),
            "--plot",
            str(png_path),
            "--no-progress",
            "--min-p",
            "0.05",
            "--kv-cache-memory",
            "16MiB",
            "--block-size",
            "4",
        ]
    )
    assert code == 0
    table = capsys.readouterr().out
    assert "greedy" in table and "sc3" in table and "counting" in table
    report = json.loads(json_path.read_text())
    labels = [s["label"] for s in report["strategies"]]
    assert report["split"] == "test" and labels == ["greedy", "sc3", "conf"]
    assert (report["config"]["min_p"], report["config"]["top_k"]) == (0.05, -1)
    greedy, sc3, conf = report["strategies"]
    assert len(greedy["items"]) == 4 and {i["family"] for i in greedy["items"]} == {"counting", "ordering"}
    assert all(i["num_branches"] == 3 for i in sc3["items"])
    # Re-voting the recorded branches by the run's own rule gives the run's own results.
    replayed = revote("sc3", sc3["items"], VoteRule())
    assert replayed.scores == {problem_key(i): float(i["correct"]) for i in sc3["items"]}
    for item in sc3["items"]:  # per-branch records, for replaying votes offline
        assert len(item["branch_answers"]) == len(item["branch_confidences"]) == 3
        assert item["branch_confidences"] == [None] * 3  # a majority vote reads no confidences
        assert all(lp <= 0 for lp in item["branch_mean_logprobs"])
        assert sum(item["branch_tokens"]) == item["generated_tokens"]
        assert item["branch_stopped"] == [False] * 3
        assert item["wave_sizes"] is None  # only `confidence` starts branches in waves
    for item in conf["items"]:  # the warm-up's 2 branches, then waves of 1 while the vote is open
        assert item["wave_sizes"] in ([], [1], [1, 1])
        assert 2 + sum(item["wave_sizes"]) == item["num_branches"]
    # The engine's own count of generated tokens matches what the strategies report.
    assert sc3["engine"]["generation_tokens"] == sum(i["generated_tokens"] for i in sc3["items"])
    # Three branches per problem prefill its prompt once: as much prefill as greedy's one branch.
    assert sc3["engine"]["prompt_tokens_computed"] == greedy["engine"]["prompt_tokens_computed"] > 0
    overall = [row for row in sc3["summary"] if row["family"] == "all"][0]
    assert overall["num_items"] == 4 and overall["wall_time_s"] > 0
    assert png_path.read_bytes()[:4] == b"\x89PNG"
    assert "sc3 vs greedy (4 paired problems): accuracy" in table
    comparison = report["comparisons"][0]
    assert (comparison["strategy"], comparison["reference"], comparison["num_items"]) == ("sc3", "greedy", 4)


def test_eval_rejects_unknown_family(qwen3_ckpt):
    from ponder.errors import InvalidRequestError

    with pytest.raises(InvalidRequestError, match="unknown nope"):
        run_cli(["eval", "--model", str(qwen3_ckpt), "--tasks", "nope"])


def test_eval_rejects_an_unknown_reference_before_loading_a_model(tmp_path):
    from ponder.errors import InvalidRequestError

    with pytest.raises(InvalidRequestError) as caught:
        run_cli(["eval", "--model", str(tmp_path / "missing"), "--strategy", "greedy", "--reference", "sc16"])
    assert caught.value.param == "reference" and "greedy" in caught.value.message


@pytest.mark.parametrize(
    ("flag", "value", "param"),
    [
        ("--min-p", "1.5", "min_p"),
        ("--top-k", "0.5", None),
        ("--top-k", "-3", "top_k"),
        ("--top-p", "0", "top_p"),
    ],
)
def test_eval_rejects_bad_sampling_knobs_before_loading_a_model(tmp_path, flag, value, param):
    from ponder.errors import InvalidRequestError

    argv = ["eval", "--model", str(tmp_path / "missing"), flag, value]
    if param is None:  # not even a number of the right kind: argparse's own usage error
        with pytest.raises(SystemExit):
            run_cli(argv)
        return
    with pytest.raises(InvalidRequestError) as caught:
        run_cli(argv)
    assert caught.value.param == param


def test_paraphrased_items_and_no_thinking_reach_the_model(qwen3_ckpt, tmp_path):
    from ponder.eval.runner import EvalConfig, load_items
    from ponder.tasks import generate

    config = EvalConfig(families=("arithmetic", "equations"), difficulties=("easy",), limit=4)
    canonical = load_items(config)
    paraphrased = load_items(dataclasses.replace(config, phrasing="paraphrase"))
    assert [i.answer for i in canonical[4:]] == [i.answer for i in paraphrased[4:]]  # equations kept
    assert not {i.question for i in canonical} & {i.question for i in paraphrased}
    assert canonical == generate("arithmetic", "easy", 4) + generate("equations", "easy", 4)
    json_path = tmp_path / "eval.json"
    argv = ["eval", "--model", str(qwen3_ckpt), "--tasks", "arithmetic", "--difficulty", "easy"]
    argv += ["--limit", "2", "--max-tokens", "6", "--phrasing", "paraphrase", "--no-thinking"]
    assert run_cli([*argv, "--no-progress", "--json", str(json_path)]) == 0
    report = json.loads(json_path.read_text())
    items = report["strategies"][0]["items"] if "strategies" in report else report["results"][0]["items"]
    assert len(items) == 2 and items[0]["gold"] == paraphrased[0].answer
