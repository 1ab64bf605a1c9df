"""Calibration from real steps: the step log on a live engine, the weighted fit, the per-request
overhead, leave-one-run-out validation, and `ponder profile --from-step-log / --grid`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ponder.cli import main
from ponder.engine.llm_engine import LLMEngine
from ponder.engine.sampling_params import SamplingParams
from ponder.errors import InvalidRequestError
from ponder.llm import LLM
from ponder.profiling.step_log import StepLog, StepRecord, read_logs
from ponder.profiling.step_model import StepModel, fit, stalls
from ponder.sim.cluster import ClusterSpec, simulate
from ponder.sim.validate import (
    RealRequest,
    Run,
    calibrate,
    hold_out,
    leave_one_out_real,
    load_runs,
    metrics_real,
    metrics_sim,
    request_overhead,
    save_runs,
    simulate_run,
    steps_in,
)
from ponder.sim.worker import SimRequest
from ponder.sim.workload import poisson


@pytest.fixture(scope="module")
def engine() -> LLMEngine:
    return LLM(None, max_num_batched_tokens=32).engine


def test_step_log_sees_chunked_prefill_and_decodes(engine, tmp_path):
    path = tmp_path / "steps.jsonl"
    log = StepLog(engine, path)
    params = SamplingParams(max_tokens=3, ignore_eos=True, temperature=0.0)
    engine.add_request("a", list(range(3, 53)), params)  # 50 tokens, budget 32: two chunks
    engine.add_request("b", list(range(60, 70)), params)
    while engine.has_unfinished_requests():
        engine.step()
    log.close()
    assert "step" not in engine.__dict__ and "schedule" not in engine.scheduler.__dict__
    shapes = [(r.tokens, r.seqs, r.sampled) for r in log.records]
    # Step 1: a's first chunk of 32; step 2: a's last 18 + b's 10 (both sample); then decodes.
    assert shapes[:2] == [(32, 1, 0), (28, 2, 2)]
    assert shapes[2:] == [(2, 2, 2), (2, 2, 2)]
    assert log.records[0].attn == 32 * 16 and log.records[1].attn == 18 * (32 + 9) + 10 * 5
    assert [r.busy_after for r in log.records] == [True, True, True, False]
    assert all(r.seconds > 0 for r in log.records)
    # Back to back: a busy step's cycle ends where the next one starts.
    first, second = log.records[:2]
    assert first.start + first.seconds == pytest.approx(second.start, abs=1e-9)
    assert read_logs([path]) == log.records
    import gzip

    (tmp_path / "steps.jsonl.gz").write_bytes(gzip.compress(path.read_bytes()))
    assert read_logs([tmp_path / "steps.jsonl.gz"]) == log.records


def test_weighted_fit_recovers_known_coefficients():
    truth = StepModel(0.01, 2e-4, 1e-3, 1e-7, 3e-3)
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(400):
        tokens, seqs = int(rng.integers(1, 300)), int(rng.integers(1, 20))
        sampled, attn = int(rng.integers(0, seqs + 1)), float(rng.uniform(0, 5e4))
        noise = rng.normal(1.0, 0.02)
        rows.append((tokens, seqs, attn, sampled, truth.step_time(tokens, seqs, attn, sampled) * noise))
    got = fit(rows)
    for name in ("overhead_s", "per_token_s", "per_seq_s", "per_sample_s"):
        assert getattr(got, name) == pytest.approx(getattr(truth, name), rel=0.1), name
    # The old 4-column rows still fit (no sampled term).
    assert fit([(r[0], r[1], r[2], r[4]) for r in rows]).per_sample_s == 0.0
    with pytest.raises(InvalidRequestError):
        fit([(1, 1, 1.0, 0.1), (1, 1, 1.0, 1, 0.1), (1, 1, 1.0, 0.1), (1, 1, 1.0, 0.1)])


def test_fit_leaves_out_stalls():
    truth = StepModel(0.01, 2e-4, 1e-3, 0.0, 0.0)
    rows = [(t, s, 0.0, s, truth.step_time(t, s, 0.0)) for t in range(1, 200, 7) for s in range(1, 6)]
    stalled = [
        (t, s, a, k, y * 40) if i % 10 == 0 else (t, s, a, k, y) for i, (t, s, a, k, y) in enumerate(rows)
    ]
    got = fit(stalled)
    assert got.overhead_s == pytest.approx(0.01, rel=0.05) and got.per_token_s == pytest.approx(
        2e-4, rel=0.05
    )
    assert stalls(got, stalled) == len(rows[::10])
    assert fit(stalled, stall=None).overhead_s > 0.02  # kept in, the stalls drag the mean up


def test_fit_never_goes_negative():
    # Time falls with seqs here (noise): that term is dropped, the rest refit, all >= 0.
    rows = [(t, s, 0.0, s, 0.01 + 1e-4 * t - 1e-4 * s) for t in range(1, 40, 3) for s in range(1, 8)]
    got = fit(rows)
    assert min(got.per_token_s, got.per_seq_s, got.per_sample_s, got.overhead_s) >= 0.0
    assert got.per_token_s == pytest.approx(1e-4, rel=0.2)


def test_request_overhead_shifts_ttft_exactly_and_keeps_tpot():
    base = StepModel(0.002, 1e-4, 5e-4, 0.0, 1e-3)
    reqs = poisson(20, 200, 100, 10, spread=0.5, seed=1)
    spec = ClusterSpec(colocated=1, budget=128)
    plain = simulate([SimRequest(r.rid, r.arrival, r.input_len, r.output_len) for r in reqs], spec, base)
    shifted = simulate(reqs, spec, StepModel(0.002, 1e-4, 5e-4, 0.0, 1e-3, request_overhead_s=0.05))
    for a, b in zip(plain, shifted):
        assert b.first_token - b.arrival == pytest.approx(a.first_token - a.arrival + 0.05)
        assert b.finished - b.first_token == pytest.approx(a.finished - a.first_token)


def _fake_runs(model: StepModel, spec: ClusterSpec) -> list[Run]:
    """ "Real" runs made by the simulator itself with a known model: calibration must get it back."""
    runs = []
    for k, rate in enumerate((5.0, 5.0, 12.0, 12.0)):
        trace = poisson(rate, 60, 100, 8, spread=0.5, seed=k // 2)  # repeats share a trace
        out = simulate(trace, spec, model)
        reqs = [
            RealRequest(r.arrival, r.input_len, r.output_len, r.first_token - r.arrival, tpot)
            for r, tpot in zip(out, [(r.finished - r.first_token) / (r.output_len - 1) for r in out])
        ]
        runs.append(Run(f"{rate}", 100.0 * k, 100.0 * k + 50, reqs))
    return runs


def test_calibration_recovers_the_model_held_out():
    truth = StepModel(0.004, 2e-4, 1e-3, 0.0, 2e-3, request_overhead_s=0.03)
    spec = ClusterSpec(colocated=1, budget=128)
    runs = _fake_runs(truth, spec)
    rng = np.random.default_rng(2)
    records = []
    for k in range(4):  # steps spread over each run's window, with their true times
        for i in range(80):
            tokens, seqs = int(rng.integers(1, 128)), int(rng.integers(1, 12))
            sampled = int(rng.integers(0, seqs + 1))
            t = truth.step_time(tokens, seqs, 0.0, sampled)
            records.append(StepRecord(100.0 * k + i * 0.5, t, tokens, seqs, sampled, 0.0, True))
    assert len(steps_in(records, runs[0])) == 80
    assert request_overhead(runs, spec, truth) == pytest.approx(0.03, abs=1e-9)
    for index in range(len(runs)):
        model = hold_out(records, runs, index, spec)
        assert model.request_overhead_s == pytest.approx(0.03, rel=0.02)
        sim, real = metrics_sim(simulate_run(runs[index], spec, model)), metrics_real(runs[index])
        for key in real:
            assert sim[key] == pytest.approx(real[key], rel=0.02), key
    near = hold_out(records, runs, 1, spec, neighbours=1)  # runs 0 and 2 only
    assert near.request_overhead_s == pytest.approx(0.03, rel=0.02)
    assert calibrate(records, runs, spec).per_sample_s == pytest.approx(2e-3, rel=0.05)
    # Repeats of one trace agree exactly here (no noise): the real-vs-real spread is zero.
    others = leave_one_out_real(runs, 0)
    assert others is not None and others == pytest.approx(metrics_real(runs[0]))
    assert leave_one_out_real(runs[:1], 0) is None


def test_runs_round_trip(tmp_path):
    runs = [Run("30%", 1.0, 2.0, [RealRequest(0.1, 10, 4, 0.2, 0.05)])]
    save_runs(tmp_path / "runs.json", runs, capacity=3.0)
    again, extra = load_runs(tmp_path / "runs.json")
    assert again == runs and extra == {"capacity": 3.0}


def test_profile_from_step_log_and_grid(tmp_path, capsys):
    log_path = tmp_path / "server.1.jsonl"
    rows = [StepRecord(float(i), 0.01 + 1e-4 * (i % 30), i % 30 + 1, 1, 1, 0.0, True) for i in range(40)]
    log_path.write_text("".join(json.dumps(r.__dict__) + "\n" for r in rows))
    out = tmp_path / "p.json"
    assert (
        main(["profile", "--from-step-log", str(log_path), "--request-overhead-ms", "20", "-o", str(out)])
        == 0
    )
    model = StepModel.load(out)
    assert model.request_overhead_s == pytest.approx(0.02)
    assert model.step_time(11, 1, 0.0, 1) == pytest.approx(0.011, rel=0.05)
    grid = tmp_path / "g.json"
    argv = ["profile", "--grid", "1,2:8,16:2", "--max-num-batched-tokens", "64", "-o", str(grid)]
    assert main(argv) == 0
    assert "steps measured" in capsys.readouterr().out
    bad_log = tmp_path / "bad.jsonl"
    bad_log.write_text("{not json\n")
    assert main(["profile", "--from-step-log", str(bad_log)]) == 2
    assert main(["profile", "--grid", "1,x:8:2"]) == 2
    assert main(["profile", "--grid", "0:8:2"]) == 2
    assert main(["profile", "--request-overhead-ms", "-1", "--quick"]) == 2


def test_per_role_logs_and_models(engine, tmp_path, monkeypatch, capsys):
    from ponder.profiling.step_log import attach_from_env
    from ponder.sim.validate import calibrate_pd

    monkeypatch.setenv("PONDER_STEP_LOG", str(tmp_path / "steps"))
    log = attach_from_env(engine, "decode")
    assert log is not None
    engine.add_request("r", [5, 6, 7], SamplingParams(max_tokens=2, ignore_eos=True))
    while engine.has_unfinished_requests():
        engine.step()
    log.close()
    assert [p.name.split(".")[1] for p in tmp_path.glob("steps.*.jsonl")] == ["decode"]
    # Prefill workers slow per token, decode workers slow per sequence: each role gets its own.
    prefill_model, decode_model = StepModel(0.01, 1e-3, 0.0, 0.0), StepModel(0.002, 0.0, 4e-3, 0.0)
    spec = ClusterSpec(prefill=1, decode=1, budget=256)
    rec = lambda m, t, s, k: StepRecord(k, m.step_time(t, s, 0.0), t, s, s, 0.0, True)  # noqa: E731
    prefill = [rec(prefill_model, t, 1, t) for t in range(10, 250, 10)]
    decode = [rec(decode_model, s, s, s) for s in range(1, 30)]
    reqs = [RealRequest(0.5 * i, 100, 8, 0.3, 0.05) for i in range(10)]
    front, back = calibrate_pd(prefill, decode, [Run("x", 0.0, 1.0, reqs)], spec)
    assert front.per_token_s == pytest.approx(1e-3, rel=0.01)
    # tokens = seqs = sampled in pure decode steps: the split among them is arbitrary, the sum not.
    assert back.step_time(16, 16, 0.0, 16) == pytest.approx(decode_model.step_time(16, 16, 0.0), rel=0.01)
    assert front.request_overhead_s > 0 and back.request_overhead_s == 0.0
    paths = []
    for name, model in (("c", prefill_model), ("p", front), ("d", back)):
        paths.append(tmp_path / f"{name}.json")
        model.save(paths[-1])
    argv = [
        "sim",
        "--profile",
        str(paths[0]),
        "--prefill-profile",
        str(paths[1]),
        "--decode-profile",
        str(paths[2]),
    ]
    assert main([*argv, "--prefill", "1", "--decode", "1", "--num-requests", "20", "--input-len", "64"]) == 0
    assert main([*argv, "--recommend-pd", "3", "--num-requests", "20", "--input-len", "64"]) == 0
    assert "recommended:" in capsys.readouterr().out
