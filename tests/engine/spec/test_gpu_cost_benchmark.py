"""benchmarks/spec_gpu_cost.py runs end to end on CPU with the tiny shape (the lead runs it on a GPU)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_tiny_shape_times_decode_and_verify_steps(tmp_path):
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "spec_gpu_cost.py"),
        "--shape", "tiny", "--device", "cpu", "--context", "40", "--batch-sizes", "1", "3",
        "--ks", "2", "4", "--iters", "1", "--repeats", "1", "--threads", "1",
        "--ckpt-dir", str(tmp_path / "ckpt"), "--out", str(tmp_path / "out"),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "out" / "spec_gpu_cost.json").read_text())
    steps = {(row["batch_size"], row["step"]) for row in result["rows"]}
    assert steps == {(b, s) for b in (1, 3) for s in ("decode", "verify-2", "verify-4")}
    assert all(row["ms"] > 0 for row in result["rows"])
    assert "| tiny | 3 | verify-4 |" in done.stdout
