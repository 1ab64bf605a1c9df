"""The main job end to end: `ponder serve` (built-in model) measured by `ponder bench`."""

import json
import os
import subprocess
import sys

import pytest

from tests.server.harness import ponder_serve

PONDER = [sys.executable, "-m", "ponder.cli"]


@pytest.fixture(scope="module")
def served_builtin_model():
    with ponder_serve("--max-num-seqs", "8") as url:
        yield url


def test_bench_measures_the_served_builtin_model(served_builtin_model, tmp_path):
    result = subprocess.run(
        [
            *PONDER,
            "bench",
            "--base-url",
            served_builtin_model,
            "--dataset",
            "reasoning",
            "--task-family",
            "arithmetic",
            "--task-difficulty",
            "easy",
            "--num-prompts",
            "6",
            "--max-concurrency",
            "3",
            "--num-warmups",
            "0",
            "--output-len",
            "400",
            "--slo",
            "ttft=30s,tpot=2s",
            "--result-dir",
            str(tmp_path),
            "--result-name",
            "run",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    document = json.loads((tmp_path / "run.json").read_text())
    summary = document["runs"][0]["summary"]
    assert summary["completed"] == 6 and summary["failed"] == 0
    assert summary["num_checked"] == 6 and summary["accuracy"] >= 0.8  # easy items: it knows these
    assert summary["reasoning_tokens"]["mean"] > 10
    assert list(tmp_path.glob("*.png"))
    assert "goodput" in result.stdout.lower()
