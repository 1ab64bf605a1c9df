"""The main job end to end: `ponder serve` (built-in model) measured by `ponder bench`."""

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from tests.server.harness import free_port

PONDER = [sys.executable, "-m", "ponder.cli"]


@pytest.fixture(scope="module")
def served_builtin_model():
    port = free_port()
    server = subprocess.Popen(
        [*PONDER, "serve", "--port", str(port), "--max-num-seqs", "8"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail(f"ponder serve did not come up: {server.stderr.read()[-2000:]}")
        time.sleep(0.2)
    yield url
    server.terminate()
    assert server.wait(timeout=60) == 0  # SIGTERM drains, then exits cleanly


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
