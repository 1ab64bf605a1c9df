"""Simulator: queueing sanity (exact deterministic case, M/D/1 mean wait), monotonicity,
conservation, P:D recommendation, profile on the built-in model, CLI bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ponder.cli import main
from ponder.errors import InvalidRequestError
from ponder.profiling.step_model import StepModel, fit
from ponder.sim.cluster import ClusterSpec, simulate
from ponder.sim.report import run, sweep_pd
from ponder.sim.worker import SimRequest
from ponder.sim.workload import poisson

# One step = one whole 100-token prompt in 10 ms: a deterministic server.
CONST = StepModel(overhead_s=0.0, per_token_s=1e-4, per_seq_s=0.0, per_attn_s=0.0)
ONE = ClusterSpec(colocated=1, budget=100, max_seqs=1)


def test_deterministic_case_is_exact():
    reqs = [SimRequest(i, i * 0.02, 100, 1) for i in range(10)]
    simulate(reqs, ONE, CONST)
    assert all(r.first_token - r.arrival == pytest.approx(0.01) for r in reqs)
    # All arrive at once: the k-th waits k services.
    burst = [SimRequest(i, 0.0, 100, 1) for i in range(5)]
    simulate(burst, ONE, CONST)
    assert [round(r.first_token, 6) for r in burst] == [0.01, 0.02, 0.03, 0.04, 0.05]


def test_md1_mean_wait():
    rate, service = 60.0, 0.01  # rho = 0.6
    reqs = poisson(rate, 20000, 100, 1, seed=1)
    simulate(reqs, ONE, CONST)
    wait = np.mean([r.first_token - r.arrival for r in reqs]) - service
    expected = 0.6 * service / (2 * (1 - 0.6))  # Pollaczek-Khinchine, deterministic service
    assert wait == pytest.approx(expected, rel=0.06)


def test_latency_monotonic_in_rate_and_conserves_requests():
    model = StepModel(0.002, 2e-5, 1e-4, 1e-9)
    spec = ClusterSpec(colocated=2, budget=256)
    p95 = []
    for rate in (2, 8, 20, 40):
        reqs = poisson(rate, 400, 200, 20, spread=0.5, seed=3)
        out = simulate(reqs, spec, model)
        assert len(out) == 400 and all(
            r.finished is not None and r.finished >= r.first_token >= r.arrival for r in out
        )
        p95.append(np.percentile([r.first_token - r.arrival for r in out], 95))
    assert p95 == sorted(p95)


def test_disaggregated_hand_off_and_pd_recommendation():
    model = StepModel(0.002, 2e-5, 1e-4, 0.0)
    reqs = poisson(30, 300, 800, 10, seed=4)  # prefill-heavy: wants more prefill workers
    spec = ClusterSpec(prefill=1, decode=1, budget=512, kv_transfer_s=0.005)
    out = simulate([SimRequest(r.rid, r.arrival, r.input_len, r.output_len) for r in reqs], spec, model)
    assert all(r.prefill_done is not None and r.first_token <= r.prefill_done for r in out)
    results = sweep_pd(reqs, 4, spec, model, ttft_slo=0.5, tpot_slo=0.05)
    names = [n for n, _ in results]
    assert len(names) == 4 and "colocated x4" in names
    best_pd = next(n for n in names if n != "colocated x4")
    assert best_pd in ("3P1D", "2P2D")
    assert run(reqs, spec, model, 0.5, 0.05).num_requests == 300


def test_hundreds_of_workers_fast():
    import time

    reqs = poisson(1000, 10000, 300, 30, seed=5)
    start = time.perf_counter()
    simulate(reqs, ClusterSpec(prefill=100, decode=100, budget=2048), StepModel(0.01, 1e-5, 1e-4, 0.0))
    assert time.perf_counter() - start < 20


def test_bad_specs():
    with pytest.raises(InvalidRequestError):
        ClusterSpec(prefill=1, decode=0)
    with pytest.raises(InvalidRequestError):
        ClusterSpec(router="random")
    with pytest.raises(InvalidRequestError):
        poisson(0, 10, 10, 10)
    with pytest.raises(InvalidRequestError):
        fit([(1, 1, 1.0, 0.1)])


def test_profile_builtin_model_and_cli(tmp_path, capsys):
    out = tmp_path / "p.json"
    assert main(["profile", "-o", str(out), "--max-num-batched-tokens", "256", "--quick"]) == 0
    model = StepModel.load(out)
    assert model.step_time(64, 4, 1000.0) > 0
    assert (
        main(
            [
                "sim",
                "--profile",
                str(out),
                "--rate",
                "2",
                "--num-requests",
                "30",
                "--input-len",
                "32",
                "--output-len",
                "4",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])["num_requests"] == 30
    assert main(["sim", "--profile", str(out), "--recommend-pd", "3", "--num-requests", "30"]) == 0
    assert "recommended:" in capsys.readouterr().out


def test_cli_bad_input(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert main(["sim", "--profile", str(bad)]) == 2
    assert main(["sim", "--profile", str(tmp_path / "missing.json")]) == 2
    good = tmp_path / "good.json"
    CONST.save(good)
    assert main(["sim", "--profile", str(good), "--prefill", "1"]) == 2
    assert main(["sim", "--profile", str(good), "--rate", "-1"]) == 2
    assert main(["sim", "--profile", str(good), "--recommend-pd", "1"]) == 2
    assert "error" in capsys.readouterr().err


def test_kv_limit_preempts_and_recomputes_like_the_engine():
    # 4 blocks of 16: two 30-token prompts fit (2 blocks each) but cannot both grow to 50.
    model = StepModel(0.0, 1e-3, 0.0, 0.0)
    spec = ClusterSpec(colocated=1, budget=64, kv_tokens=64, block_size=16)
    reqs = [SimRequest(0, 0.0, 30, 20), SimRequest(1, 0.0, 30, 20)]
    simulate(reqs, spec, model)
    assert reqs[0].preemptions == 0 and reqs[1].preemptions >= 1  # the newest goes
    assert reqs[0].finished < reqs[1].finished
    # Unlimited: both run together, nobody is preempted, and it all ends sooner.
    free = [SimRequest(0, 0.0, 30, 20), SimRequest(1, 0.0, 30, 20)]
    simulate(free, ClusterSpec(colocated=1, budget=64), model)
    assert all(r.preemptions == 0 for r in free) and max(r.finished for r in free) < reqs[1].finished
    # The first arrival starts a step alone (the second joins the next one, as in the engine):
    # request 0's prompt ends at 0.030, request 1's at 0.030 + 0.031 (its 30 + request 0's decode).
    assert reqs[0].first_token == pytest.approx(0.03)
    assert reqs[1].first_token == pytest.approx(0.061)
    with pytest.raises(InvalidRequestError):
        simulate([SimRequest(0, 0.0, 60, 10)], spec, model)
    with pytest.raises(InvalidRequestError):
        ClusterSpec(kv_tokens=-1)
