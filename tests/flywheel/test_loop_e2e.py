"""curate -> train (full and LoRA) -> eval on a tiny checkpoint, through the CLI."""

from __future__ import annotations

import json
import time

import pytest

from ponder.cli import main
from ponder.flywheel.records import LogRecord
from ponder.flywheel.store import RequestLogStore


def logged(index: int) -> LogRecord:
    return LogRecord(
        response_id=f"r{index}",
        created=time.time(),
        model="tiny",
        model_version="v1",
        workload_id="math" if index % 2 else "chat",
        endpoint="chat",
        prompt=json.dumps([{"role": "user", "content": f"What is {index} + 1?"}]),
        reasoning=f"{index} plus one is {index + 1}.",
        answer=f"\\boxed{{{index + 1}}}",
        final_answer=str(index + 1),
        strategy="self_consistency",
        agreement=0.9 if index % 5 else 0.3,  # every fifth row is a split vote: curated out
        finish_reason="stop",
    )


@pytest.mark.parametrize("method", ["full", "lora"])
def test_curate_train_eval(qwen3_ckpt, tmp_path, capsys, method):
    store = RequestLogStore(tmp_path / "log.db")
    for index in range(40):
        store.append(logged(index))
    store.close()
    assert main(["flywheel", "stats", str(tmp_path / "log.db")]) == 0
    assert "self_consistency" in capsys.readouterr().out
    data = tmp_path / "data"
    assert (
        main(["flywheel", "curate", str(tmp_path / "log.db"), "--out", str(data), "--min-agreement", "0.5"])
        == 0
    )
    out = capsys.readouterr().out
    assert "kept 32" in out and "low_agreement 8" in out
    candidate = tmp_path / f"candidate-{method}"
    argv = [
        "flywheel",
        "train",
        str(data / "train.jsonl"),
        "--base",
        str(qwen3_ckpt),
        "--out",
        str(candidate),
    ]
    assert main([*argv, "--method", method, "--epochs", "3", "--lr", "3e-3"]) == 0
    report = json.loads((candidate / "flywheel_train.json").read_text())["result"]
    assert report["final_loss"] < report["first_loss"]  # it learned the curated answers
    assert report["examples"] == len((data / "train.jsonl").read_text().splitlines())
    result = tmp_path / "eval.json"
    argv = ["flywheel", "eval", "--current", str(qwen3_ckpt), "--candidate", str(candidate)]
    assert main([*argv, "--data", str(data / "eval.jsonl"), "--max-tokens", "8", "--json", str(result)]) == 0
    table = capsys.readouterr().out
    assert "current" in table and "candidate" in table and "95% CI" in table
    rows = json.loads(result.read_text())["rows"]
    assert [row["items"] for row in rows] == [4, 4]
