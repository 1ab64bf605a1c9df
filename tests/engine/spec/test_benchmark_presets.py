"""The speculation and structured-output benchmarks' presets run end to end at a tiny size (the
lead runs the full presets on the device machine's CPUs and GPU)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "benchmarks" / script), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_speculative_smoke_preset_reports_paired_ratios_and_the_aa_floor(tmp_path):
    configs = ["baseline", "ngram", "draft", "baseline-sync", "baseline2"]
    run(
        "speculative.py",
        "--preset",
        "smoke",
        "--max-tokens",
        "6",
        "--configs",
        *configs,
        "--out",
        str(tmp_path),
    )
    result = json.loads((tmp_path / "speculative.json").read_text())
    assert result["rounds"] == 2
    cells = {(r["workload"], r["batch_size"], r["config"]): r for r in result["rows"]}
    assert set(cells) == {(w, b, c) for w in ("repetitive", "sampled") for b in (1, 2) for c in configs}
    for row in cells.values():
        low, high = row["ratio_ci95"]
        assert len(row["ratio_rounds"]) == 2 and low <= row["ratio_median"] <= high
    assert all(
        cells[(w, b, "baseline")]["ratio_median"] == 1.0 for w in ("repetitive", "sampled") for b in (1, 2)
    )
    assert result["greedy_mismatches"] == {"repetitive batch 1": 0, "repetitive batch 2": 0}
    assert "| sampled | 2 | baseline2 |" in (tmp_path / "speculative.md").read_text()


def test_structured_output_smoke_preset_reports_overhead_and_aa_floor(tmp_path):
    run("structured_output.py", "--preset", "smoke", "--out", str(tmp_path))
    result = json.loads((tmp_path / "structured_output.json").read_text())
    overhead = result["overhead"]
    assert overhead["rounds"] == 2
    for key in ("overhead", "aa"):
        low, high = overhead[f"{key}_pct_ci95"]
        assert low <= overhead[f"{key}_pct_median_of_rounds"] <= high
    assert result["parse"]["requests"] == 32
    assert "A/A" in (tmp_path / "structured_output.md").read_text()
