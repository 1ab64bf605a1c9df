"""The self-training benchmark's loop on a tiny model: a log of task traffic, 30% of its labels
corrupted, curated with and without the task checker, fine-tuned and scored (CI-sized)."""

from __future__ import annotations

import json
import time

from benchmarks import flywheel_selftrain as bench

from ponder.flywheel.evaluate import items_from_tasks
from ponder.flywheel.records import LogRecord
from ponder.flywheel.store import RequestLogStore, read_rows
from ponder.tasks import generate


def write_traffic(path, items) -> None:
    store = RequestLogStore(path)
    for index, item in enumerate(items):
        store.append(
            LogRecord(
                response_id=f"sc-{index}",
                created=time.time(),
                model="tiny",
                model_version="v1",
                workload_id="arithmetic/easy",
                endpoint="chat",
                prompt=json.dumps([{"role": "user", "content": item.question}]),
                reasoning=f"{item.question}\nResult: {item.answer}\nAnswer: {item.answer}",
                answer=f"\\boxed{{{item.answer}}}",
                final_answer=item.answer,
                strategy="self_consistency",
                agreement=0.9,
                finish_reason="stop",
            )
        )
    store.close()


def test_corruption_then_curation_by_the_task_checker(qwen3_ckpt, tmp_path):
    args = bench.parse_args(
        ["--out", str(tmp_path), "--family", "arithmetic", "--difficulty", "easy", "--traffic", "20"]
        + ["--max-tokens", "4", "--epochs", "1", "--lr", "1e-3", "--batch-size", "4"]
    )
    items = generate("arithmetic", "easy", 20, split="train", seed=0)
    write_traffic(tmp_path / "requests.db", items)
    corrupted = bench.corrupt_log(tmp_path / "requests.db", tmp_path / "corrupt.db", 0.3, seed=0)
    assert 2 <= corrupted <= 12
    rows = read_rows(tmp_path / "corrupt.db")
    wrong = [row for row, item in zip(rows, items) if row.final_answer != item.answer]
    assert len(wrong) == corrupted
    assert all(
        f"Answer: {row.final_answer}" in row.reasoning and row.final_answer in row.answer for row in wrong
    )

    heldout = items_from_tasks(generate("arithmetic", "easy", 2, split="test"))
    raw = bench.run_variant(args, "corrupt/none", str(qwen3_ckpt), tmp_path, heldout)
    curated = bench.run_variant(args, "corrupt/curated", str(qwen3_ckpt), tmp_path, heldout)
    assert raw["kept"] == 20 and raw["label_accuracy"] == (20 - corrupted) / 20
    assert curated["kept"] == 20 - corrupted and curated["label_accuracy"] == 1.0
    assert curated["score"].correct is not None and len(curated["score"].correct) == 2
    assert (tmp_path / "candidate-corrupt-curated" / "flywheel_train.json").is_file()
    assert "--verify-tasks arithmetic" in curated["commands"][0]
