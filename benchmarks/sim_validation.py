"""Validate `ponder sim` against the real engine: profile, then replay Poisson traces on the real
engine (an AsyncEngine-like loop: arrivals join before the next step) and in the simulator with
the same arrival times and lengths; print p50/p95 TTFT/TPOT errors as a markdown table.

    python benchmarks/sim_validation.py --budget 256 --num 60 --input-len 128 --output-len 16
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ponder.engine.sampling_params import SamplingParams
from ponder.llm import LLM
from ponder.profiling.runner import DEFAULT_SHAPES, profile
from ponder.sim.cluster import ClusterSpec, simulate
from ponder.sim.worker import SimRequest
from ponder.sim.workload import poisson


def real_run(engine, reqs: list[SimRequest]) -> list[tuple[float, float]]:
    params = {r.rid: SamplingParams(max_tokens=r.output_len, ignore_eos=True, temperature=0.0) for r in reqs}
    start = time.monotonic()
    pending = sorted(reqs, key=lambda r: r.arrival)
    done: dict[int, tuple[float, float]] = {}
    while len(done) < len(reqs):
        now = time.monotonic() - start
        while pending and pending[0].arrival <= now:
            r = pending.pop(0)
            prompt = [3 + (r.rid * 13 + i) % 600 for i in range(r.input_len)]
            engine.add(
                engine.make_request(f"v{r.rid}", prompt, params[r.rid], arrival_time=start + r.arrival)
            )
        if not engine.has_unfinished_requests():
            time.sleep(max(0.0, pending[0].arrival - (time.monotonic() - start)))
            continue
        for out in engine.step():
            if out.finished:
                m, rid = out.metrics, int(out.request_id[1:])
                ttft = m.first_token_time - m.arrival_time
                n = len(out.outputs[0].token_ids)
                done[rid] = (ttft, (m.finished_time - m.first_token_time) / max(n - 1, 1))
    return [done[r.rid] for r in reqs]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=int, default=256)
    ap.add_argument("--num", type=int, default=60)
    ap.add_argument("--input-len", type=int, default=128)
    ap.add_argument("--output-len", type=int, default=16)
    ap.add_argument("--loads", default="0.3,0.55,0.8")
    args = ap.parse_args()
    llm = LLM(None, max_num_batched_tokens=args.budget)
    model, rows = profile(llm.engine, DEFAULT_SHAPES)
    spec = ClusterSpec(colocated=1, budget=args.budget)
    # Capacity measured on the engine: a burst of requests, completed per second.
    burst = [SimRequest(i, 0.0, args.input_len, args.output_len) for i in range(24)]
    t0 = time.monotonic()
    real_run(llm.engine, burst)
    capacity = len(burst) / (time.monotonic() - t0)
    print(f"profile: {model} ({len(rows)} steps); measured capacity {capacity:.2f} req/s")
    print("| load | rate req/s | metric | real | sim | error |\n|---|---|---|---|---|---|")
    for k, load in enumerate(float(x) for x in args.loads.split(",")):
        reqs = poisson(load * capacity, args.num, args.input_len, args.output_len, spread=0.5, seed=10 + k)
        for r in reqs:
            r.rid += 1000 * (k + 1)
        real = real_run(llm.engine, reqs)
        sim = simulate([SimRequest(r.rid, r.arrival, r.input_len, r.output_len) for r in reqs], spec, model)
        s_ttft = [r.first_token - r.arrival for r in sim]
        s_tpot = [(r.finished - r.first_token) / max(r.output_len - 1, 1) for r in sim]
        for name, rv, sv in (("TTFT", [x[0] for x in real], s_ttft), ("TPOT", [x[1] for x in real], s_tpot)):
            for q in (50, 95):
                a, b = np.percentile(rv, q) * 1e3, np.percentile(sv, q) * 1e3
                print(
                    f"| {load:.0%} | {load * capacity:.2f} | {name} p{q} (ms) "
                    f"| {a:.1f} | {b:.1f} | {(b - a) / a:+.0%} |"
                )


if __name__ == "__main__":
    main()
