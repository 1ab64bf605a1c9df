"""Validate `ponder sim` against the real server: one `ponder serve` worker (one thread) logs
every step (PONDER_STEP_LOG); this script replays Poisson traces at fractions of the measured
capacity over HTTP (streaming /v1/completions, token-id prompts), each trace several times with
the rates interleaved, then predicts every run with the simulator calibrated on the OTHER runs
only (their logged steps and their requests: leave one run out), and prints the error per (load,
metric) next to the run-to-run spread of the real runs (each repeat vs the mean of the others).

    nice -n 10 python benchmarks/sim_validation.py --num 80 --repeats 3 --out docs/results/sim_raw

On a quiet many-core machine: `--threads 4` (OMP threads of the server) and larger --num."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ponder.profiling.step_log import read_logs
from ponder.profiling.step_model import stalls
from ponder.sim.cluster import ClusterSpec
from ponder.sim.validate import (
    RealRequest,
    Run,
    calibrate,
    hold_out,
    leave_one_out_real,
    load_runs,
    metrics_real,
    metrics_sim,
    save_runs,
    simulate_run,
    steps_in,
)
from ponder.sim.workload import poisson


async def one_request(client, url: str, prompt: list[int], max_tokens: int) -> tuple:
    body = {
        "model": "ponder",
        "prompt": prompt,
        "max_tokens": max_tokens,
        "ignore_eos": True,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    sent = time.monotonic()
    first = last = None
    tokens = 0
    async with client.stream("POST", url + "/v1/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk["choices"]:
                last = time.monotonic()
                first = first or last
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    assert first is not None and last is not None
    return sent, first, last, tokens


async def replay(url: str, trace, label: str, salt: int, vocab: int = 600) -> Run:
    """Send each request at its arrival time; prompts differ per salt (no prefix-cache hits)."""
    import httpx

    run = Run(label, time.time(), 0.0)
    t0 = time.monotonic()
    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=1000)) as client:

        async def at(req):
            await asyncio.sleep(max(0.0, req.arrival - (time.monotonic() - t0)))
            prompt = [3 + (salt * 7919 + req.rid * 131 + i) % vocab for i in range(req.input_len)]
            return req, await one_request(client, url, prompt, req.output_len)

        results = await asyncio.gather(*(at(r) for r in trace))
    run.end = time.time()
    for req, (sent, first, last, tokens) in results:
        tpot = (last - first) / (tokens - 1) if tokens > 1 else 0.0
        run.requests.append(RealRequest(sent - t0, req.input_len, tokens, first - sent, tpot))
    return run


def replay_in_process(engine, trace, label: str, salt: int, vocab: int = 600) -> Run:
    """The engine alone, no HTTP: arrivals join before the next step (as AsyncEngine's loop)."""
    from ponder.engine.sampling_params import SamplingParams

    run = Run(label, time.time(), 0.0)
    start = time.monotonic()
    pending = sorted(trace, key=lambda r: r.arrival)
    done: dict[int, RealRequest] = {}
    while len(done) < len(trace):
        now = time.monotonic() - start
        while pending and pending[0].arrival <= now:
            r = pending.pop(0)
            prompt = [3 + (salt * 7919 + r.rid * 131 + i) % vocab for i in range(r.input_len)]
            params = SamplingParams(max_tokens=r.output_len, ignore_eos=True, temperature=0.0)
            engine.add(engine.make_request(f"v{r.rid}", prompt, params, arrival_time=start + r.arrival))
        if not engine.has_unfinished_requests():
            time.sleep(max(0.0, pending[0].arrival - (time.monotonic() - start)))
            continue
        for out in engine.step():
            if out.finished:
                m, rid = out.metrics, int(out.request_id[1:])
                n = len(out.outputs[0].token_ids)
                tpot = (m.finished_time - m.first_token_time) / (n - 1) if n > 1 else 0.0
                arrival = m.arrival_time - start
                done[rid] = RealRequest(
                    arrival, trace[rid].input_len, n, m.first_token_time - m.arrival_time, tpot
                )
    run.end = time.time()
    run.requests = [done[r.rid] for r in trace]
    return run


def start_server(args: argparse.Namespace, log_prefix: Path) -> subprocess.Popen:
    import httpx

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PONDER_STEP_LOG=str(log_prefix))
    command = [
        sys.executable, "-m", "ponder", "serve", "--port", str(args.port), "--kv-cache-memory", "64MiB",
        "--max-num-batched-tokens", str(args.budget), "--uvicorn-log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env)
    deadline = time.monotonic() + 300
    while True:
        if process.poll() is not None:
            raise SystemExit("the server exited")
        try:
            if httpx.get(f"http://127.0.0.1:{args.port}/health", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("the server did not come up")
        time.sleep(0.5)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=int, default=256)
    ap.add_argument("--num", type=int, default=80)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--input-len", type=int, default=128)
    ap.add_argument("--output-len", type=int, default=16)
    ap.add_argument("--spread", type=float, default=0.5)
    ap.add_argument("--loads", default="0.3,0.55,0.8")
    ap.add_argument("--burst", type=int, default=32, help="requests sent at once to measure capacity")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--port", type=int, default=8795)
    ap.add_argument(
        "--in-process", action="store_true", help="drive the engine directly (no server, no HTTP)"
    )
    ap.add_argument("--device", default=None, help="--in-process: cpu or cuda")
    ap.add_argument("--out", default="docs/results/sim_raw")
    ap.add_argument(
        "--reanalyze", default=None, metavar="RUNS_JSON", help="report on saved runs, run nothing"
    )
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.reanalyze:
        runs, saved = load_runs(args.reanalyze)
        records = read_logs(sorted(out.glob(saved["steps"] + ".*.jsonl*")))  # also .jsonl.gz
        report(records, runs, saved["capacity"], saved["loads"], args, out)
        return
    prefix = out / f"steps-{int(time.time())}"
    url = f"http://127.0.0.1:{args.port}"
    loads = [float(x) for x in args.loads.split(",")]
    server, engine = None, None
    if args.in_process:
        import torch

        from ponder.llm import LLM
        from ponder.profiling.step_log import StepLog

        torch.set_num_threads(args.threads)
        kwargs = {"device": args.device} if args.device else {}
        engine = LLM(None, max_num_batched_tokens=args.budget, **kwargs).engine
        log = StepLog(engine, f"{prefix}.{os.getpid()}.jsonl")

        def replay_one(trace, label, salt):
            return replay_in_process(engine, trace, label, salt)
    else:
        server = start_server(args, prefix)

        def replay_one(trace, label, salt):
            return asyncio.run(replay(url, trace, label, salt))

    runs: list[Run] = []
    try:
        replay_one(poisson(100.0, 4, 32, 4), "warmup", 0)
        burst_trace = poisson(1e6, args.burst, args.input_len, args.output_len, args.spread, seed=99)
        burst = replay_one(burst_trace, "capacity", 1)
        capacity = len(burst.requests) / (burst.end - burst.start)
        print(f"capacity (burst of {args.burst}): {capacity:.2f} req/s", flush=True)
        salt = 2
        for repeat in range(args.repeats):
            # Rotate the order each repeat, so slow drift does not always hit the same load.
            order = loads[repeat % len(loads) :] + loads[: repeat % len(loads)]
            for load in order:
                seed = 10 + loads.index(load)
                trace = poisson(
                    load * capacity, args.num, args.input_len, args.output_len, args.spread, seed=seed
                )
                run = replay_one(trace, f"{load:.0%}", salt)
                salt += 1
                runs.append(run)
                print(f"repeat {repeat} load {load:.0%}: {metrics_real(run)}", flush=True)
    finally:
        if server is not None:
            server.terminate()
            server.wait(60)
        else:
            log.close()
    save_runs(out / f"{prefix.name}-runs.json", runs, capacity=capacity, loads=loads, steps=prefix.name)
    records = read_logs(sorted(out.glob(prefix.name + ".*.jsonl")))
    report(records, runs, capacity, loads, args, out)


def report(records, runs: list[Run], capacity: float, loads: list[float], args, out: Path) -> None:
    spec = ClusterSpec(colocated=1, budget=args.budget)
    rows = []
    for index, run in enumerate(runs):
        held_out = hold_out(records, runs, index, spec)
        near = hold_out(records, runs, index, spec, neighbours=1)
        own = calibrate(steps_in(records, run), [run], spec)  # in-sample: the scheduler model alone
        rows.append(
            {
                "label": run.label,
                "real": metrics_real(run),
                "sim": metrics_sim(simulate_run(run, spec, held_out)),
                "sim_neighbours": metrics_sim(simulate_run(run, spec, near)),
                "sim_own_steps": metrics_sim(simulate_run(run, spec, own)),
                "real_others": leave_one_out_real(runs, index),
                "model": asdict(held_out),
                "steps": len(steps_in(records, run)),
                "drift": drift(steps_in(records, run), held_out),
            }
        )
    full = calibrate(records, runs, spec)
    (out / "sim_validation.json").write_text(
        json.dumps(
            {"args": vars(args), "capacity": capacity, "model_all": asdict(full), "rows": rows}, indent=2
        )
    )
    rows5 = [(r.tokens, r.seqs, r.attn, r.sampled, r.seconds) for r in records]
    print(
        f"\n{len(records)} steps logged ({stalls(full, rows5)} stalls: > 3x the fit, left out of it); "
        f"fitted on all: {full}; capacity {capacity:.2f} req/s"
    )
    print(
        "| load | rate req/s | metric | real (mean of repeats) | real spread: repeat vs others | "
        "sim error (held out: all other runs) | sim error (held out: the runs before and after) "
        "| sim error (the run's own steps) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for load in loads:
        label = f"{load:.0%}"
        mine = [r for r in rows if r["label"] == label]
        for key in mine[0]["real"]:
            real = [r["real"][key] for r in mine]
            spread = [r["real_others"][key] / r["real"][key] - 1 for r in mine if r["real_others"]]
            sim = [r["sim"][key] / r["real"][key] - 1 for r in mine]
            near = [r["sim_neighbours"][key] / r["real"][key] - 1 for r in mine]
            own = [r["sim_own_steps"][key] / r["real"][key] - 1 for r in mine]
            print(
                f"| {label} | {load * capacity:.2f} | {key} (ms) | {1e3 * np.mean(real):.1f} | "
                f"{_errors(spread)} | {_errors(sim)} | {_errors(near)} | {_errors(own)} |"
            )
    print("\nstep-time drift per run (its logged steps / the held-out fit), in run order:")
    print(", ".join(f"{r['label']} {r['drift'] - 1:+.0%}" for r in rows))


def drift(steps, model) -> float:
    """This run's logged step time over what the held-out fit predicts for the same steps: how
    much faster or slower the machine was during it than in the calibration."""
    predicted = sum(model.step_time(r.tokens, r.seqs, r.attn, r.sampled) for r in steps)
    return sum(r.seconds for r in steps) / predicted if predicted else float("nan")


def _errors(values: list[float]) -> str:
    """Each repeat's signed error, and the mean |error|."""
    if not values:
        return "-"
    each = " ".join(f"{v:+.0%}" for v in values)
    return f"{each} (mean abs {np.mean(np.abs(values)):.0%})"


if __name__ == "__main__":
    main()
