"""benchmarks/builtin_sweep.py end to end on the CPU: a tiny run, its greedy ranking and, with
--vote-samples, greedy and self-consistency on two sets of hard items."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_tiny_sweep_ranks_its_model_and_measures_voting_on_each_item_set(tmp_path):
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "builtin_sweep.py"),
        "--out",
        str(tmp_path),
        "--run",
        "t:1:easy=1,medium=0,hard=0",
        "--preset",
        "tiny",
        "--steps",
        "4",
        "--limit",
        "1",
        "--max-tokens",
        "4",
        "--snapshot-every",
        "1000",
        "--workers-per-run",
        "1",
        "--vote-samples",
        "2",
        "--vote-limit",
        "1",
        "--vote-item-seeds",
        "0,3",
        "--vote-temperature",
        "1.2",
        "--vote-top-p",
        "0.9",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(command, check=True, cwd=ROOT, env=env, capture_output=True, timeout=300)
    ranking = json.loads((tmp_path / "ranking.json").read_text())
    result = ranking["t/model"]
    assert set(result["accuracy"]) == {"easy", "hard"} and len(result["accuracy"]["hard"]) == 6
    assert set(result["vote"]) == {"0", "3"}
    for seed in ("0", "3"):
        assert set(result["vote"][seed]) == {"greedy", "vote"}
        written = json.loads((tmp_path / "t" / "model" / f"vote-{seed}.json").read_text())
        labels = [strategy["label"] for strategy in written["strategies"]]
        assert labels == ["greedy", "self_consistency:n=2"]
        assert (written["config"]["temperature"], written["config"]["top_p"]) == (1.2, 0.9)
    gain = sum(s["vote"] - s["greedy"] for s in result["vote"].values()) / 2
    assert result["score"][1] == gain  # ranked by what voting gains, after the easy check
    assert (tmp_path / "best" / "model.safetensors").exists()
