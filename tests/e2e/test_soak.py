"""The soak script, short: 30 s of mixed load (streams, n=2, a strategy, mid-stream hang-ups,
400s) on a real `ponder serve`; no request fails unexpectedly, nothing is left running, SIGTERM
exits 0, and RSS after warm-up grows ≤ 5% (the 30-minute figure is in BENCHMARKS.md)."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "soak.py"


def test_short_soak_holds_memory_flat(tmp_path):
    out = tmp_path / "soak.json"
    command = [sys.executable, str(SCRIPT), "--seconds", "30", "--concurrency", "4"]
    run = subprocess.run(
        [*command, "--max-growth", "0.05", "--json-out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["num_failures"] == 0 and result["server_exit"] == 0
    assert {"abort", "chat_stream", "bad"} <= set(result["counts"])  # the mix really ran
    assert len(result["samples"]) >= 20
