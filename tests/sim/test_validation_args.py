"""benchmarks/sim_validation.py's core pinning and presets (the quiet-machine run depends on them)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "sim_validation.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("sim_validation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cpus_split_server_and_client(script):
    ours = sorted(os.sched_getaffinity(0))
    if len(ours) < 2:
        pytest.skip("needs 2 cores")
    text = f"{ours[0]}-{ours[1]}" if ours[1] == ours[0] + 1 else f"{ours[0]},{ours[1]}"
    args = script.parse_args(["--cpus", text, "--preset", "device-cpu", "--repeats", "2"])
    assert args.server_cpus == [ours[0]] and args.client_cpus == [ours[1]]
    assert args.threads == 1  # one server core: the engine thread alone
    assert args.profile and args.replay_seconds == 210.0 and args.loads == "0.3,0.55,0.8"
    assert args.repeats == 2  # a flag given wins over the preset
    assert script.parse_cpus(",".join(map(str, ours[:2]))) == ours[:2]


def test_bad_cpus_are_refused(script):
    with pytest.raises(SystemExit):
        script.parse_cpus("3")  # no core left for the client
    with pytest.raises(SystemExit):
        script.parse_cpus("a-b")
    with pytest.raises(SystemExit):
        script.parse_cpus("100000-100001")  # not this process's cores
