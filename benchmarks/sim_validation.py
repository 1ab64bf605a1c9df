"""Validate `ponder sim` against the real server: one `ponder serve` worker (one thread) logs
every step (PONDER_STEP_LOG); this script replays Poisson traces at fractions of the measured
capacity over HTTP (streaming /v1/completions, token-id prompts), each trace several times with
the rates interleaved, then predicts every run with the simulator calibrated on the OTHER runs
only (their logged steps and their requests: leave one run out), and prints the error per (load,
metric) next to the run-to-run spread of the real runs (each repeat vs the mean of the others).

    nice -n 10 python benchmarks/sim_validation.py --num 80 --repeats 3 --out docs/results/sim_raw

On a quiet many-core machine, the whole held-out check in about 6 minutes on 6 cores (server
pinned to the first 5 with 4 OMP threads, the client to the last; `ponder profile` first):

    CUDA_VISIBLE_DEVICES="" PYTHONPATH=src python3 benchmarks/sim_validation.py --preset device-cpu \
        --cpus 10-15 --out /tmp/simval_device

It writes sim_validation.md and .json, the runs, the gzipped step logs and profile.json to --out;
`--reanalyze OUT/steps-*-runs.json --out DIR` reports on them again without running anything."""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from ponder.profiling.step_log import read_logs
from ponder.profiling.step_model import StepModel, stalls
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
    request_overhead,
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


def parse_cpus(text: str) -> list[int]:
    """'10-15' or '0,2,4-6' -> sorted core ids (taskset's list syntax)."""
    cpus: set[int] = set()
    try:
        for part in text.split(","):
            low, _, high = part.partition("-")
            cpus.update(range(int(low), int(high or low) + 1))
    except ValueError as error:
        raise SystemExit(f"bad --cpus {text!r}: {error}") from error
    if len(cpus) < 2:
        raise SystemExit("--cpus needs at least 2 cores: the server's and the client's")
    if not cpus <= os.sched_getaffinity(0):
        raise SystemExit(f"--cpus {text}: cores {sorted(cpus - os.sched_getaffinity(0))} are not ours")
    return sorted(cpus)


def split_cpus(cpus: list[int]) -> tuple[list[int], list[int]]:
    """(server cores, client cores): the client (one asyncio loop) gets the last core, the
    server the rest, so the load generator never takes CPU from the engine it measures."""
    return cpus[:-1], cpus[-1:]


def child_env(args: argparse.Namespace, **extra: str) -> dict[str, str]:
    """The server/profile child's environment: its OMP threads, and this checkout's src on
    PYTHONPATH (the device machine has no `ponder` install, only `python -m ponder`)."""
    import ponder

    src = str(Path(ponder.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONPATH=path, **extra)


def pinned(args: argparse.Namespace):
    """preexec_fn pinning a child to the server's cores (inherited by all its threads)."""
    if not args.server_cpus:
        return None
    cores = set(args.server_cpus)
    return lambda: os.sched_setaffinity(0, cores)


def start_server(args: argparse.Namespace, log_prefix: Path) -> subprocess.Popen:
    import httpx

    env = child_env(args, PONDER_STEP_LOG=str(log_prefix))
    command = [
        sys.executable, "-m", "ponder", "serve", "--port", str(args.port), "--kv-cache-memory", "64MiB",
        "--max-num-batched-tokens", str(args.budget), "--uvicorn-log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env, preexec_fn=pinned(args))  # noqa: PLW1509
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


def run_profile(args: argparse.Namespace, out: Path) -> Path:
    """`ponder profile` (the engine alone, no HTTP) on the server's cores, before the server
    starts: the simulator calibrated from it alone is the issue's "profile -> sim" path."""
    path = out / "profile.json"
    command = [
        sys.executable, "-m", "ponder", "profile", "-o", str(path),
        "--max-num-batched-tokens", str(args.budget), "--grid", args.profile_grid,
    ]  # fmt: skip
    begin = time.monotonic()
    subprocess.run(command, env=child_env(args), preexec_fn=pinned(args), check=True)  # noqa: PLW1509
    print(f"ponder profile: {time.monotonic() - begin:.0f} s", flush=True)
    return path


# --preset NAME: defaults for a whole validation; flags given on the command line still win.
PRESETS = {
    # Held-out validation on a quiet many-core host in about 6 minutes (with --cpus over 6 cores):
    # `ponder profile`, a 64-request burst for the capacity, 3 loads <= 80 % x 3 repeats, the
    # requests per run sized from the capacity so the 9 replays take --replay-seconds in all.
    "device-cpu": {
        "loads": "0.3,0.55,0.8",
        "repeats": 3,
        "burst": 64,
        "replay_seconds": 210.0,
        "profile": True,
    },
    # Seconds, for a smoke test of the whole path (numbers meaningless).
    "smoke": {
        "loads": "0.3,0.8",
        "repeats": 2,
        "burst": 8,
        "num": 6,
        "input_len": 32,
        "output_len": 4,
        "profile": True,
        "profile_grid": "1,2:16,32:2",
    },
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", choices=sorted(PRESETS), default=None)
    ap.add_argument("--budget", type=int, default=256)
    ap.add_argument("--num", type=int, default=80, help="requests per run (see --replay-seconds)")
    ap.add_argument(
        "--replay-seconds",
        type=float,
        default=None,
        help="size --num from the measured capacity so all replays take about this long",
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--input-len", type=int, default=128)
    ap.add_argument("--output-len", type=int, default=16)
    ap.add_argument("--spread", type=float, default=0.5)
    ap.add_argument("--loads", default="0.3,0.55,0.8")
    ap.add_argument("--burst", type=int, default=32, help="requests sent at once to measure capacity")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="server OMP threads (default 1, or --cpus' server cores - 1)",
    )
    ap.add_argument(
        "--cpus",
        default=None,
        metavar="LIST",
        help="cores to use, e.g. 10-15: the client gets the last one, the server the others",
    )
    ap.add_argument(
        "--profile", action="store_true", help="also run `ponder profile` and report the sim from it"
    )
    ap.add_argument("--profile-grid", default="1,4,8,16:32,128,192:16", help="`ponder profile --grid`")
    ap.add_argument("--port", type=int, default=8795)
    ap.add_argument(
        "--in-process", action="store_true", help="drive the engine directly (no server, no HTTP)"
    )
    ap.add_argument("--device", default=None, help="--in-process: cpu or cuda")
    ap.add_argument("--out", default="docs/results/sim_raw")
    ap.add_argument(
        "--reanalyze", default=None, metavar="RUNS_JSON", help="report on saved runs, run nothing"
    )
    first, _ = ap.parse_known_args(argv)
    if first.preset:
        ap.set_defaults(**PRESETS[first.preset])
    args = ap.parse_args(argv)
    args.server_cpus, args.client_cpus = split_cpus(parse_cpus(args.cpus)) if args.cpus else ([], [])
    if args.threads is None:
        args.threads = max(1, len(args.server_cpus) - 1) if args.server_cpus else 1
    return args


def main() -> None:
    args = parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.reanalyze:
        runs, saved = load_runs(args.reanalyze)
        where = Path(args.reanalyze).parent
        records = read_logs(sorted(where.glob(saved["steps"] + ".*.jsonl*")))  # also .jsonl.gz
        profile = where / saved["profile"] if saved.get("profile") else None
        report(records, runs, saved["capacity"], saved["loads"], args, out, profile, saved)
        return
    began, load_before = time.monotonic(), os.getloadavg()
    if args.client_cpus:  # this process is the client (or, --in-process, the engine)
        os.sched_setaffinity(0, set(args.server_cpus if args.in_process else args.client_cpus))
    prefix = out / f"steps-{int(time.time())}"
    url = f"http://127.0.0.1:{args.port}"
    loads = [float(x) for x in args.loads.split(",")]
    profile = run_profile(args, out) if args.profile else None
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
        if args.replay_seconds:
            per_run = args.replay_seconds / (args.repeats * sum(1 / load for load in loads))
            args.num = min(600, max(20, int(per_run * capacity)))  # bounds the analysis time
        print(
            f"capacity (burst of {args.burst}): {capacity:.2f} req/s; {args.num} requests per run", flush=True
        )
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
    saved = {
        "capacity": capacity,
        "loads": loads,
        "steps": prefix.name,
        "profile": profile.name if profile else None,
        "args": {k: v for k, v in vars(args).items() if k != "reanalyze"},
        "measured_s": round(time.monotonic() - began, 1),
        "host": host_info(args, load_before),
    }
    save_runs(out / f"{prefix.name}-runs.json", runs, **saved)
    logs = sorted(out.glob(prefix.name + ".*.jsonl"))
    records = read_logs(logs)
    for path in logs:  # keep what comes back small
        path.with_suffix(".jsonl.gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
    report(records, runs, capacity, loads, args, out, profile, saved)
    print(f"wall time {time.monotonic() - began:.0f} s", flush=True)


def host_info(args: argparse.Namespace, load_before: tuple[float, float, float]) -> dict:
    """What the run had: cores, pinning, threads, the host's load before and after."""
    import platform

    import torch

    return {
        "cpu_count": os.cpu_count(),
        "server_cpus": args.server_cpus,
        "client_cpus": args.client_cpus,
        "server_threads": args.threads,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "processor": platform.processor() or platform.machine(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    }


def report(
    records,
    runs: list[Run],
    capacity: float,
    loads: list[float],
    args,
    out: Path,
    profile: Path | None = None,
    saved: dict | None = None,
) -> None:
    budget = (saved or {}).get("args", {}).get("budget", args.budget)
    spec = ClusterSpec(colocated=1, budget=budget)
    profiled = StepModel.load(profile) if profile else None
    rows = []
    for index, run in enumerate(runs):
        held_out = hold_out(records, runs, index, spec)
        linear = hold_out(records, runs, index, spec, exponents=(1.0,))  # the model before issue 19's fix
        near = hold_out(records, runs, index, spec, neighbours=1)
        own = calibrate(steps_in(records, run), [run], spec)  # in-sample: the scheduler model alone
        others = [r for k, r in enumerate(runs) if k != index]
        row = {
            "label": run.label,
            "real": metrics_real(run),
            "sim": metrics_sim(simulate_run(run, spec, held_out)),
            "sim_linear": metrics_sim(simulate_run(run, spec, linear)),
            "sim_neighbours": metrics_sim(simulate_run(run, spec, near)),
            "sim_own_steps": metrics_sim(simulate_run(run, spec, own)),
            "real_others": leave_one_out_real(runs, index),
            "model": asdict(held_out),
            "model_linear": asdict(linear),
            "steps": len(steps_in(records, run)),
            "drift": drift(steps_in(records, run), held_out),
        }
        if profiled is not None:  # `ponder profile`'s steps, the request term from the other runs
            from_profile = replace(profiled, request_overhead_s=request_overhead(others, spec, profiled))
            row["sim_profile"] = metrics_sim(simulate_run(run, spec, from_profile))
        rows.append(row)
    full = calibrate(records, runs, spec)
    (out / "sim_validation.json").write_text(
        json.dumps(
            {
                "args": vars(args),
                "saved": saved,
                "capacity": capacity,
                "model_all": asdict(full),
                "profile": asdict(profiled) if profiled else None,
                "rows": rows,
            },
            indent=2,
        )
    )
    rows5 = [(r.tokens, r.seqs, r.attn, r.sampled, r.seconds) for r in records]
    columns = [
        ("sim", "sim error (held out: all other runs)"),
        ("sim_linear", "sim error (held out, linear step model: before)"),
        ("sim_neighbours", "sim error (held out: the runs before and after)"),
        ("sim_own_steps", "sim error (the run's own steps)"),
    ]
    if profiled is not None:
        columns.append(("sim_profile", "sim error (`ponder profile` + request term of other runs)"))
    lines = [
        f"{len(records)} steps logged ({stalls(full, rows5)} stalls: > 3x the fit, left out of it); "
        f"fitted on all: {full}; capacity {capacity:.2f} req/s; {len(runs)} runs of "
        f"{len(runs[0].requests)} requests",
    ]
    if profiled is not None:
        lines.append(f"`ponder profile`: {profiled}")
    lines += [
        "",
        "| load | rate req/s | metric | real (mean of repeats) | real spread: repeat vs others | "
        + " | ".join(title for _, title in columns)
        + " |",
        "|---|---|---|---|---|" + "---|" * len(columns),
    ]
    for load in loads:
        label = f"{load:.0%}"
        mine = [r for r in rows if r["label"] == label]
        for key in mine[0]["real"]:
            real = [r["real"][key] for r in mine]
            spread = [r["real_others"][key] / r["real"][key] - 1 for r in mine if r["real_others"]]
            cells = [_errors([r[column][key] / r["real"][key] - 1 for r in mine]) for column, _ in columns]
            lines.append(
                f"| {label} | {load * capacity:.2f} | {key} (ms) | {1e3 * np.mean(real):.1f} | "
                f"{_errors(spread)} | " + " | ".join(cells) + " |"
            )
    lines += [
        "",
        "Mean |error| over every run and metric: " + _summary(rows, columns),
        "",
        "step-time drift per run (its logged steps / the held-out fit), in run order: "
        + ", ".join(f"{r['label']} {r['drift'] - 1:+.0%}" for r in rows),
    ]
    if saved and saved.get("host"):
        lines += ["", f"host: {json.dumps(saved['host'])}"]
    text = "\n".join(lines)
    print("\n" + text)
    (out / "sim_validation.md").write_text(
        f"# sim validation ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n\n"
        f"    python3 {' '.join(sys.argv)}\n\n{text}\n"
    )


def drift(steps, model) -> float:
    """This run's logged step time over what the held-out fit predicts for the same steps: how
    much faster or slower the machine was during it than in the calibration."""
    predicted = sum(model.step_time(r.tokens, r.seqs, r.attn, r.sampled) for r in steps)
    return sum(r.seconds for r in steps) / predicted if predicted else float("nan")


def _summary(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """Mean |error| over every (run, metric), and how many (load, metric) cells are within 10 %."""

    def both(errors: dict[tuple[str, str], list[float]]) -> str:
        flat = [abs(e) for cell in errors.values() for e in cell]
        within = sum(1 for cell in errors.values() if np.mean(np.abs(cell)) <= 0.10)
        return f"{np.mean(flat):.0%} ({within}/{len(errors)} cells <= 10%)" if flat else "-"

    def cells(value) -> dict[tuple[str, str], list[float]]:
        found: dict[tuple[str, str], list[float]] = {}
        for r in rows:
            for key in r["real"]:
                v = value(r, key)
                if v is not None:
                    found.setdefault((r["label"], key), []).append(v / r["real"][key] - 1)
        return found

    parts = [f"real spread {both(cells(lambda r, k: r['real_others'][k] if r['real_others'] else None))}"]
    for column, title in columns:
        parts.append(f"{title.removeprefix('sim error ')} {both(cells(lambda r, k, c=column: r[c][k]))}")
    return "; ".join(parts)


def _errors(values: list[float]) -> str:
    """Each repeat's signed error, and the mean |error|."""
    if not values:
        return "-"
    each = " ".join(f"{v:+.0%}" for v in values)
    return f"{each} (mean abs {np.mean(np.abs(values)):.0%})"


if __name__ == "__main__":
    main()
