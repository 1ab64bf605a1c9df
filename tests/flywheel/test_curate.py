"""Curation rules on crafted rows: each rejection reason, the checker outranking votes, dedupe
keeping the best duplicate, the stratified split, and the SFT export."""

from __future__ import annotations

import json

from ponder.flywheel.curate import CurationRules, curate, judge, split
from ponder.flywheel.export import read_jsonl, write_jsonl
from ponder.flywheel.verify import TaskVerifier
from ponder.tasks import generate
from tests.flywheel.test_store import record

ITEM = generate("arithmetic", "easy", 1, split="train")[0]


def chat_prompt(question: str) -> str:
    return json.dumps([{"role": "user", "content": question}])


def test_each_rule_rejects_with_its_reason():
    rules = CurationRules(min_agreement=0.6, min_confidence=0.5, min_feedback=0.5)
    good = dict(agreement=0.8, confidence=0.9, finish_reason="stop")
    cases = {
        "error": record(0, status="error", **good),
        "no_content": record(1, prompt=None, answer=None, **good),
        "truncated": record(2, agreement=0.8, confidence=0.9, finish_reason="length"),
        "no_answer": record(3, answer="no box here", final_answer=None, **good),
        "low_agreement": record(4, agreement=0.4, confidence=0.9),
        "low_confidence": record(5, agreement=0.9, confidence=0.2),
        "low_feedback": record(6, feedback=0.1, **good),
    }
    for reason, row in cases.items():
        assert judge(row, rules, None) == reason, reason
    assert not isinstance(judge(record(7, **good), rules, None), str)
    assert not isinstance(judge(record(8, feedback=None, **good), rules, None), str)  # no feedback: passes
    assert judge(record(9, agreement=None, confidence=0.9), rules, None) == "low_agreement"  # no vote


def test_a_task_checker_outranks_votes():
    verifier = TaskVerifier([ITEM])
    rules = CurationRules(min_agreement=0.9)
    prompt = chat_prompt(ITEM.question)
    wrong = "0" if ITEM.answer != "0" else "1"
    unanimous_but_wrong = record(0, prompt=prompt, final_answer=wrong, agreement=1.0)
    assert judge(unanimous_but_wrong, rules, verifier) == "failed_check"
    split_vote_but_right = record(1, prompt=prompt, final_answer=ITEM.answer, agreement=0.3)
    kept = judge(split_vote_but_right, rules, verifier)
    assert not isinstance(kept, str) and kept.verified is True
    unknown = record(2, agreement=0.95)  # no checker knows "q2": the votes decide
    assert judge(unknown, rules, verifier).verified is None
    assert judge(unknown, CurationRules(verified_only=True), verifier) == "unverified"


def test_verifier_recognises_generated_items():
    verifier = TaskVerifier.for_families(["arithmetic"], pool=50)
    assert verifier.check(ITEM.question, ITEM.answer) is True
    assert verifier.check("What is the meaning of life?", "42") is None


def test_dedupe_keeps_the_best_duplicate():
    rows = [
        record(0, prompt=chat_prompt("same"), agreement=0.7),
        record(1, prompt=chat_prompt("same"), agreement=0.9),
        record(2, prompt=chat_prompt("  SAME "), agreement=0.8),  # the same after normalising
        record(3, prompt=chat_prompt("other"), agreement=0.9),
    ]
    result = curate(rows, CurationRules(min_agreement=0.5, eval_fraction=0.0))
    assert result.rejected["duplicate"] == 2
    assert sorted(row.record.response_id for row in result.train) == ["chatcmpl-1", "chatcmpl-3"]


def test_split_is_stratified_by_workload_and_stable():
    rows = [record(i, workload_id="a" if i < 40 else "b", agreement=1.0) for i in range(50)]
    result = curate(rows, CurationRules(eval_fraction=0.2))
    held = [row.record.workload_id for row in result.eval]
    assert held.count("a") == 8 and held.count("b") == 2
    again = curate(list(reversed(rows)), CurationRules(eval_fraction=0.2))
    assert {r.record.response_id for r in again.eval} == {r.record.response_id for r in result.eval}
    train, evaluation = split(result.train[:1], 0.5)
    assert len(train) == 1 and evaluation == []  # one row stays in train


def test_export_is_chat_format_with_reasoning(tmp_path):
    result = curate(
        [record(0, reasoning="2+2 is 4", answer="\\boxed{4}", final_answer="4")],
        CurationRules(eval_fraction=0),
    )
    assert write_jsonl(tmp_path / "train.jsonl", result.train) == 1
    (example,) = read_jsonl(tmp_path / "train.jsonl")
    assert example["messages"] == [
        {"role": "user", "content": "q0"},
        {"role": "assistant", "content": "\\boxed{4}", "reasoning_content": "2+2 is 4"},
    ]
    assert example["metadata"]["answer"] == "4"
