"""DistServe-style comparison on this machine: SLO attainment vs request rate for deployments of
the same worker count (`ponder serve --data-parallel-size N` and `ponder serve --disagg XPYD`),
with the simulator's prediction next to every measured point. Every worker logs its steps
(PONDER_STEP_LOG); the simulator of a point is calibrated on that deployment's OTHER rates
only (their logged steps and their requests; sim/validate.py), then replays the point's own
trace (the arrivals and lengths `ponder bench` sent). All deployments run at once and the rates
are interleaved, so drift on a shared machine hits all alike. One thread per worker.

    nice -n 10 python benchmarks/disagg.py --configs colocated3,2P1D,1P2D --rates 0.2,0.4,0.6,0.8 \
        --num-prompts 16 --out docs/results

Writes disagg.json, disagg_attainment.png and disagg_recommend_pd.txt (`ponder sim
--recommend-pd` at each rate) into --out and prints the markdown table. Failed KV hand-offs
(counted on the decode workers) are shown in the transfer column and given to the simulator
(`kv_failed_share`). `--reanalyze STAMP` reports on saved runs and step logs, running nothing."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx

from ponder.assets import default_model_dir
from ponder.profiling.step_log import read_logs
from ponder.profiling.step_model import StepModel
from ponder.sim.cluster import ClusterSpec
from ponder.sim.report import run as sim_run
from ponder.sim.report import summarize
from ponder.sim.validate import (
    RealRequest,
    Run,
    calibrate,
    calibrate_pd,
    load_runs,
    metrics_real,
    metrics_sim,
    save_runs,
    simulate_run,
    steps_in,
    steps_outside,
)
from ponder.sim.workload import poisson

ENV = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")  # 1 thread a worker, all sides
SERVE = [
    sys.executable,
    "-m",
    "ponder",
    "serve",
    "--kv-cache-memory",
    "64MiB",
    "--uvicorn-log-level",
    "warning",
]


# --kv-cache-memory 64MiB of the built-in model: 512 blocks x 16 tokens (its startup line).
KV_TOKENS = 8192


def deployment(config: str) -> tuple[list[str], ClusterSpec]:
    """`colocatedN` or `XPYD` -> (serve flags, the simulator's cluster)."""
    if config.startswith("colocated"):
        n = int(config.removeprefix("colocated"))
        return ["--data-parallel-size", str(n), "--router-policy", "least-load"], ClusterSpec(
            colocated=n, kv_tokens=KV_TOKENS
        )
    p, d = config.upper().removesuffix("D").split("P")
    flags = ["--disagg", f"{p}P{d}D", "--kv-connector", "shm", "--router-policy", "least-load"]
    return flags, ClusterSpec(prefill=int(p), decode=int(d), kv_tokens=KV_TOKENS)


def start(port: int, flags: list[str], log_prefix: Path) -> subprocess.Popen:
    env = dict(ENV, PONDER_STEP_LOG=str(log_prefix))
    return subprocess.Popen([*SERVE, "--port", str(port), *flags], env=env)


def wait_healthy(url: str, process: subprocess.Popen, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise SystemExit(f"{url}: the server exited")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} not ready")
        time.sleep(0.5)


def bench(
    url: str, rate: float, seed: int, args: argparse.Namespace, name: str, out: Path
) -> tuple[dict, Run]:
    """One `ponder bench` run; each rate gets its own seed, so no rate finds the prompts of an
    earlier one in the prefix cache. Returns its summary and its requests as a Run."""
    command = [
        sys.executable, "-m", "ponder", "bench", "--base-url", url, "--endpoint", "/v1/completions",
        "--tokenizer", str(default_model_dir()), "--dataset", "random",
        "--random-input-len", str(args.input_len), "--random-output-len", str(args.output_len),
        "--ignore-eos", "--num-prompts", str(args.num_prompts), "--request-rate", str(rate),
        "--seed", str(seed), "--slo", f"ttft={args.ttft_slo_ms}ms,tpot={args.tpot_slo_ms}ms",
        "--result-dir", str(out / "disagg_raw"), "--result-name", name, "--no-plots", "--no-progress",
    ]  # fmt: skip
    begin = time.time()
    subprocess.run(command, check=True, env=ENV, stdout=subprocess.DEVNULL)
    run = Run(f"{rate}", begin, time.time())
    result = json.loads((out / "disagg_raw" / f"{name}.json").read_text())["runs"][0]
    for r in result["requests"]:
        if r["success"]:
            run.requests.append(
                RealRequest(
                    r["start_ms"] / 1e3,
                    r["prompt_tokens"],
                    r["output_tokens"],
                    r["ttft_ms"] / 1e3,
                    r["tpot_ms"] / 1e3,
                )
            )
    return result["summary"], run


def decode_transfer_share(router_url: str) -> dict[str, float]:
    """transfer_totals over the decode workers' /metrics, now."""
    workers = httpx.get(router_url + "/disagg/workers", timeout=5).json()["data"]
    texts = [httpx.get(w["url"] + "/metrics", timeout=5).text for w in workers if w["role"] == "decode"]
    return transfer_totals(texts)


TRANSFER_SAMPLES = {
    "ponder:kv_transfer_seconds_total": "transfer_s",
    "ponder:kv_transfer_prefill_seconds_total": "prefill_s",
}


def transfer_totals(texts: list[str]) -> dict[str, float]:
    """Summed over these decode workers' metrics texts: transfer and prefill seconds, loads ok and
    failed, failed loads recomputed. Parsed with prometheus_client (labels, any order), so a
    worker whose loads all failed shows as failed loads, not as a missing number."""
    from prometheus_client.parser import text_string_to_metric_families

    totals = dict.fromkeys(("transfer_s", "prefill_s", "loads_ok", "loads_failed", "recomputed"), 0.0)
    for text in texts:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name in TRANSFER_SAMPLES:
                    totals[TRANSFER_SAMPLES[sample.name]] += sample.value
                elif sample.name == "ponder:kv_transfer_loads_total":
                    totals[f"loads_{sample.labels['outcome']}"] += sample.value
                elif (
                    sample.name == "ponder:kv_transfer_fallbacks_total"
                    and sample.labels["action"] == "recompute"
                ):
                    totals["recomputed"] += sample.value
    return totals


def transfer_fields(before: dict[str, float], after: dict[str, float]) -> dict:
    """A rate's row fields from the totals before and after it."""
    delta = {key: after[key] - before[key] for key in after}
    ok, prefill = delta["loads_ok"], delta["prefill_s"]
    return {
        "transfer_share_pct": round(100 * delta["transfer_s"] / prefill, 2) if prefill else None,
        "transfer_ms_mean": round(1000 * delta["transfer_s"] / ok, 1) if ok else None,
        "loads_ok": int(ok),
        "loads_failed": int(delta["loads_failed"]),
    }


def share_cell(row: dict) -> str:
    """The table's transfer column: the share and mean time, and any failed loads (each of which
    the decode worker waited out, --kv-transfer-timeout, then recomputed)."""
    if "loads_ok" not in row and row.get("transfer_share_pct") is None:
        return "-"
    text = (
        f"{row['transfer_share_pct']}% ({row['transfer_ms_mean']} ms)"
        if row.get("transfer_share_pct") is not None and row.get("transfer_ms_mean") is not None
        else "no load ok"
    )
    failed = row.get("loads_failed", 0)
    if failed:
        text += f"; {failed} of {failed + row.get('loads_ok', 0)} loads failed"
    return text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--configs", default="colocated3,2P1D,1P2D")
    parser.add_argument("--rates", default="0.2,0.4,0.6,0.8")
    parser.add_argument("--num-prompts", type=int, default=16)
    parser.add_argument("--input-len", type=int, default=512)
    parser.add_argument("--output-len", type=int, default=48)
    parser.add_argument("--ttft-slo-ms", type=float, default=3000)
    parser.add_argument("--tpot-slo-ms", type=float, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--sim-requests", type=int, default=400, help="long Poisson trace per rate (expectation)"
    )
    parser.add_argument("--out", default="docs/results")
    parser.add_argument(
        "--reanalyze",
        default=None,
        metavar="STAMP",
        help="report on the saved runs and step logs of --out/disagg_raw/steps-STAMP-*, run nothing",
    )
    args = parser.parse_args()
    if args.reanalyze:
        print(reanalyze(Path(args.out) / "disagg_raw", args.reanalyze, args))
        return
    out = Path(args.out)
    raw = out / "disagg_raw"
    raw.mkdir(parents=True, exist_ok=True)
    rates = [float(r) for r in args.rates.split(",")]
    configs = args.configs.split(",")
    stamp = int(time.time())
    servers, urls, specs, runs = {}, {}, {}, {c: [] for c in configs}
    for k, config in enumerate(configs):
        flags, specs[config] = deployment(config)
        servers[config] = start(8711 + k, flags, raw / f"steps-{stamp}-{config}")
        urls[config] = f"http://127.0.0.1:{8711 + k}"
    rows = []
    try:
        for config in configs:
            wait_healthy(urls[config], servers[config])
        for index, rate in enumerate(rates):
            for config in configs:
                url, disagg = urls[config], specs[config].disaggregated
                before = decode_transfer_share(url) if disagg else None
                summary, run = bench(
                    url, rate, args.seed + index, args, f"disagg-{stamp}-{config}-{rate}", out
                )
                runs[config].append(run)
                row = {
                    "config": config,
                    "rate": rate,
                    "attainment_pct": summary["slo_attainment_pct"],
                    "ttft_p50_ms": summary["ttft_ms"]["median"],
                    "tpot_p50_ms": summary["tpot_ms"]["median"],
                    "failed": summary["failed"],
                }
                if before is not None:
                    row.update(transfer_fields(before, decode_transfer_share(url)))
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        for process in servers.values():
            process.terminate()
        for process in servers.values():
            process.wait(120)
    for config in configs:
        save_runs(raw / f"steps-{stamp}-{config}-runs.json", runs[config], config=config)
    transfer_s = statistics.mean(
        [r["transfer_ms_mean"] / 1000 for r in rows if r.get("transfer_ms_mean")] or [0.0]
    )
    slo = (args.ttft_slo_ms / 1000, args.tpot_slo_ms / 1000)
    models: dict[str, tuple[StepModel, StepModel | None]] = {}
    for config in configs:
        logs = {
            role: read_logs(sorted(raw.glob(f"steps-{stamp}-{config}.{role}.*.jsonl")))
            for role in ("colocated", "prefill", "decode")
        }
        spec = specs[config] = replace(
            specs[config], kv_transfer_s=transfer_s if specs[config].disaggregated else 0.0
        )

        models[config] = fit_deployment(logs, spec, runs[config])
        for index, run in enumerate(runs[config]):
            # Held out: this rate's steps and requests are not in its calibration.
            others = [r for k, r in enumerate(runs[config]) if k != index]
            model, decode_model = fit_deployment(logs, spec, others, exclude=run)
            row = next(r for r in rows if r["config"] == config and r["rate"] == rates[index])
            loads = row.get("loads_ok", 0) + row.get("loads_failed", 0)
            # the hand-offs that failed at this rate (measured): they wait the timeout, recompute
            failed = row.get("loads_failed", 0) / loads if loads else 0.0
            same = summarize(
                simulate_run(run, replace(spec, kv_failed_share=failed), model, decode_model), *slo
            )
            trace = poisson(rates[index], args.sim_requests, args.input_len, args.output_len, seed=args.seed)
            long = sim_run(trace, spec, model, *slo, decode_model)
            row["sim_attainment_pct"] = round(100 * same.attainment, 1)
            row["sim_long_attainment_pct"] = round(100 * long.attainment, 1)
            row["sim_ttft_p50_ms"] = round(1000 * same.ttft["p50"], 1)
            row["sim_tpot_p50_ms"] = round(1000 * same.tpot["p50"], 1)
    # `ponder sim --recommend-pd`: colocated workers from the colocated run's steps, P/D workers
    # from the prefill and decode workers' steps (of the first disaggregated config).
    profiles = {}
    colocated = next((c for c in configs if c.startswith("colocated")), None)
    disagg = next((c for c in configs if specs[c].disaggregated), None)
    if colocated:
        profiles["--profile"] = models[colocated][0]
    if disagg:
        profiles["--prefill-profile"], profiles["--decode-profile"] = models[disagg]
        profiles.setdefault("--profile", models[disagg][0])
    paths = {}
    for flag, model in profiles.items():
        paths[flag] = raw / f"disagg-{stamp}-{flag.strip('-')}.json"
        model.save(paths[flag], device="CPU, 2 cores, shared (fitted from the step log)")
    recommend = recommend_pd(paths, rates, len_workers(specs[configs[0]]), transfer_s, args)
    (out / "disagg_recommend_pd.txt").write_text(recommend)
    (out / "disagg.json").write_text(
        json.dumps(
            {
                "args": vars(args),
                "models": {c: [str(m) for m in ms] for c, ms in models.items()},
                "rows": rows,
            },
            indent=2,
        )
    )
    plot(rows, configs, args, out / "disagg_attainment.png")
    print_table(rows, configs, models)
    print(recommend)


def failed_share(decode_steps: list, run: Run) -> float:
    """Hand-offs of this run that failed, inferred from the decode workers' step log: a decode
    step computing at least half a prompt is a recompute after a failed load (a working hand-off
    leaves only decodes there)."""
    prompt = min(r.input_len for r in run.requests)
    recomputes = sum(1 for r in steps_in(decode_steps, run) if r.tokens >= prompt // 2)
    return min(1.0, recomputes / len(run.requests)) if run.requests else 0.0


def reanalyze(raw: Path, stamp: str, args: argparse.Namespace) -> str:
    """Per saved deployment and rate: measured TTFT/TPOT p50, the simulator held out (this rate's
    steps and requests unseen; per-role fits with the pooled prior), and for P/D the simulator
    with the failed-load share the decode workers' step logs show (each waits the 10 s timeout)."""
    lines = [
        "| config | rate | failed loads (from the step log) | TTFT p50 ms real / sim | "
        "TPOT p50 ms real / sim (hand-off ok) / sim (failed share) |",
        "|---|---|---|---|---|",
    ]
    for path in sorted(raw.glob(f"steps-{stamp}-*-runs.json")):
        runs, saved = load_runs(path)
        config = saved["config"]
        spec = replace(deployment(config)[1], kv_transfer_s=0.02)
        logs = {
            role: read_logs(sorted(raw.glob(f"steps-{stamp}-{config}.{role}.*.jsonl*")))
            for role in ("colocated", "prefill", "decode")
        }
        for index, run in enumerate(runs):
            others = [r for k, r in enumerate(runs) if k != index]
            model, decode_model = fit_deployment(logs, spec, others, exclude=run)
            real = metrics_real(run)
            ok = metrics_sim(simulate_run(run, spec, model, decode_model))
            share = failed_share(logs["decode"], run) if spec.disaggregated else 0.0
            failed = (
                metrics_sim(simulate_run(run, replace(spec, kv_failed_share=share), model, decode_model))
                if share
                else ok
            )
            lines.append(
                f"| {config} | {run.label} | {share:.0%} | {1e3 * real['TTFT p50']:.0f} / "
                f"{1e3 * ok['TTFT p50']:.0f} | {1e3 * real['TPOT p50']:.0f} / {1e3 * ok['TPOT p50']:.0f} / "
                f"{1e3 * failed['TPOT p50']:.0f} |"
            )
        if spec.disaggregated:
            front, back = fit_deployment(logs, spec, runs)
            lines.append(f"| {config} | all | fitted: prefill {front}; decode {back} | | |")
    return "\n".join(lines)


def fit_deployment(logs: dict, spec: ClusterSpec, calibration_runs: list[Run], exclude: Run | None = None):
    """One model per role: a decode worker's steps are not a prefill worker's batch mix."""
    records = {role: steps_outside(r, [exclude]) if exclude else r for role, r in logs.items()}
    if spec.disaggregated:
        return calibrate_pd(records["prefill"], records["decode"], calibration_runs, spec)
    return calibrate(records["colocated"], calibration_runs, spec), None


def len_workers(spec: ClusterSpec) -> int:
    return spec.prefill + spec.decode if spec.disaggregated else spec.colocated


def recommend_pd(profiles: dict[str, Path], rates: list[float], total: int, transfer_s: float, args) -> str:
    text = []
    flags = [item for flag, path in profiles.items() for item in (flag, str(path))]
    for rate in rates:
        command = [
            sys.executable, "-m", "ponder", "sim", *flags, "--recommend-pd", str(total),
            "--rate", str(rate), "--num-requests", str(args.sim_requests), "--input-len", str(args.input_len),
            "--output-len", str(args.output_len), "--ttft-slo-ms", str(args.ttft_slo_ms),
            "--tpot-slo-ms", str(args.tpot_slo_ms), "--kv-transfer-ms", f"{transfer_s * 1e3:.1f}",
            "--kv-tokens", str(KV_TOKENS),
        ]  # fmt: skip
        result = subprocess.run(command, check=True, capture_output=True, text=True, env=ENV)
        text.append(f"$ ponder sim {' '.join(command[4:])}\n{result.stdout}")
    return "\n".join(text)


COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]


def plot(rows: list[dict], configs: list[str], args: argparse.Namespace, path: Path) -> None:
    try:
        import matplotlib
    except ImportError:
        print("no matplotlib: no plot")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.5, 4.2))
    for config, color in zip(configs, COLORS):
        mine = [r for r in rows if r["config"] == config]
        rates = [r["rate"] for r in mine]
        axes.plot(rates, [r["attainment_pct"] for r in mine], "o-", color=color, label=f"{config} measured")
        axes.plot(rates, [r["sim_attainment_pct"] for r in mine], "x--", color=color, label=f"{config} sim")
    axes.axhline(90, color="grey", linewidth=0.8, linestyle=":")
    axes.set_xlabel("request rate (req/s)")
    axes.set_ylabel("SLO attainment (%)")
    axes.set_title(
        f"in {args.input_len} / out {args.output_len}, TTFT<={args.ttft_slo_ms:g} ms, "
        f"TPOT<={args.tpot_slo_ms:g} ms\nbuilt-in model, CPU 2 cores shared, 1 thread per worker",
        fontsize=9,
    )
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


HEADER = (
    "| config | rate req/s | attainment % | sim % (same trace) | sim % (long trace) "
    "| TTFT p50 ms (sim) | TPOT p50 ms (sim) | transfer / prefill |"
)


def print_table(rows: list[dict], configs: list[str], models: dict) -> None:
    for config, (model, decode_model) in models.items():
        print(
            f"{config}: fitted on all its steps: {model}"
            + (f"; decode: {decode_model}" if decode_model else "")
        )
    print(HEADER)
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        share = share_cell(r)
        print(
            f"| {r['config']} | {r['rate']} | {r['attainment_pct']} | {r['sim_attainment_pct']} | "
            f"{r['sim_long_attainment_pct']} | {r['ttft_p50_ms']:.0f} ({r['sim_ttft_p50_ms']:.0f}) | "
            f"{r['tpot_p50_ms']:.0f} ({r['sim_tpot_p50_ms']:.0f}) | {share} |"
        )
    for config in configs:
        ok = [r["rate"] for r in rows if r["config"] == config and (r["attainment_pct"] or 0) >= 90]
        sim_ok = [r["rate"] for r in rows if r["config"] == config and r["sim_attainment_pct"] >= 90]
        print(
            f"{config}: highest rate with >= 90% attainment: measured {max(ok, default=None)}, "
            f"sim {max(sim_ok, default=None)}"
        )


if __name__ == "__main__":
    main()
