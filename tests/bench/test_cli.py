"""`ponder bench` end to end: tables, the JSON result file, plots, compare, errors."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest

from ponder.bench.results import SCHEMA_VERSION
from ponder.cli import main as ponder_main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ponder.cli", "bench", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def main(args: list[str]) -> int:
    return ponder_main(["bench", *args])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_sweep_writes_tables_json_and_plots(fake_server, tmp_path):
    server = fake_server()
    done = bench(
        "--base-url", server.base_url + "/v1/",
        "--num-prompts", "4",
        "--sweep", "20,inf",
        "--max-concurrency", "4",
        "--slo", "ttft=200ms,tpot=50ms,e2e=10s",
        "--num-warmups", "1",
        "--result-dir", str(tmp_path),
        "--result-name", "sweep",
        "--no-progress",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "### Request rate 20 req/s" in done.stdout and "### Sweep" in done.stdout
    assert "| TTFT |" in done.stdout and "| Request goodput (req/s) |" in done.stdout

    document = json.loads((tmp_path / "sweep.json").read_text())
    assert document["schema_version"] == SCHEMA_VERSION
    assert document["model"] == "fake-model"
    assert document["config"]["load"]["request_rates"] == [20.0, "inf"]
    assert document["config"]["slo_ms"] == {"ttft": 200.0, "tpot": 50.0, "e2e": 10000.0}
    assert "api_key" not in document["config"]["target"]
    assert [run["summary"]["request_rate"] for run in document["runs"]] == [20.0, "inf"]
    for run in document["runs"]:
        assert run["summary"]["completed"] == 4 and run["summary"]["num_good"] == 4
        assert len(run["requests"]) == 4
        assert 100.0 <= run["requests"][0]["ttft_ms"] <= 200.0  # scripted: 100 ms

    for name in ("sweep-latency-cdf.png", "sweep-sweep.png"):
        path = tmp_path / name
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        height, width, _ = matplotlib.image.imread(path).shape
        assert width > 800 and height > 300


def test_compare_prints_both_runs_with_ratios(fake_server, tmp_path, capsys):
    from tests.bench.fake_openai_server import Script

    fast, slow = fake_server(), fake_server(lambda payload: Script(token_interval_s=0.04))
    common = ["--num-prompts", "3", "--num-warmups", "0", "--no-progress", "--no-plots"]
    for server, name in ((fast, "fast"), (slow, "slow")):
        args = ["--base-url", server.base_url, "--result-dir", str(tmp_path), "--result-name", name]
        assert main([*args, "--label", name, *common]) == 0
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "fast.json"), str(tmp_path / "slow.json")]) == 0
    out = capsys.readouterr().out
    assert "| Metric | fast | slow | ratio (slow/fast) |" in out
    tpot_row = next(line for line in out.splitlines() if line.startswith("| Mean TPOT (ms)"))
    ratio = float(tpot_row.rsplit("|", 2)[-2].strip().rstrip("x"))
    assert ratio == pytest.approx(2.0, rel=0.2)  # 40 ms against 20 ms between tokens


def test_unreachable_url_gives_one_clear_message():
    done = bench("--base-url", f"http://127.0.0.1:{free_port()}", "--num-prompts", "2")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("ponder bench: error: cannot reach http://127.0.0.1:")
    assert "--base-url" in lines[0]
    assert "Traceback" not in done.stderr and done.stdout == ""


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--slo", "ttft=soon"], "--slo"),
        (["--sweep", "1,fast"], "--sweep"),
        (["--duration", "5"], "--max-concurrency"),
        (["--base-url", "localhost:8000"], "--base-url"),
        (["--extra-body", "[1]"], "--extra-body"),
    ],
)
def test_bad_flags_exit_2_with_a_message(args, flag, capsys):
    assert main(["--num-prompts", "1", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ponder bench: error:") and flag in err


def test_compare_refuses_a_file_of_another_schema(tmp_path, capsys):
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"schema_version": 0, "runs": []}))
    assert main(["compare", str(path), str(path)]) == 2
    assert "schema_version" in capsys.readouterr().err


def test_all_failed_run_exits_1(fake_server, tmp_path, capsys):
    from tests.bench.fake_openai_server import Script

    server = fake_server(lambda payload: Script(status=500))
    code = main(["--base-url", server.base_url, "--num-prompts", "2", "--num-warmups", "0",
                 "--no-progress"])  # fmt: skip
    assert code == 1
    assert "http_500 ×2" in capsys.readouterr().out


def test_docs_describe_every_field_of_the_result_file(fake_server, tmp_path):
    """docs/bench.md documents the schema; a new field must be documented there too."""
    server = fake_server()
    assert main(["--base-url", server.base_url, "--num-prompts", "1", "--num-warmups", "0",
                 "--no-progress", "--no-plots", "--result-dir", str(tmp_path),
                 "--result-name", "r"]) == 0  # fmt: skip
    document = json.loads((tmp_path / "r.json").read_text())
    docs = (Path(__file__).parents[2] / "docs" / "bench.md").read_text()
    run = document["runs"][0]
    fields = [*document, *document["config"], *run["summary"], *run["requests"][0]]
    for section in ("target", "workload", "load"):
        fields += list(document["config"][section])
    missing = [name for name in fields if f"`{name}`" not in docs]
    assert not missing, f"fields missing from docs/bench.md: {missing}"
