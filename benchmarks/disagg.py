"""DistServe-style comparison on this machine: SLO attainment vs request rate for two colocated
replicas (`ponder serve --data-parallel-size 2`) and one prefill + one decode worker (`ponder serve
--disagg 1P1D`), with the simulator's prediction (`ponder sim`'s engine, from a `ponder profile`
of this engine) next to every measured point. Both deployments run at once and the rates are
interleaved (colocated, then 1P1D, per rate), so drift on a shared machine hits both alike.

    python benchmarks/disagg.py --rates 0.1,0.2,0.35,0.5 --num-prompts 10 --out docs/results

Writes disagg.json and disagg_attainment.png into --out and prints the markdown table."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ponder.assets import default_model_dir
from ponder.profiling.step_model import StepModel
from ponder.sim.cluster import ClusterSpec
from ponder.sim.report import run as sim_run
from ponder.sim.workload import poisson

ENV = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")  # 1 thread a worker, both sides
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


def start(port: int, *flags: str) -> subprocess.Popen:
    return subprocess.Popen([*SERVE, "--port", str(port), *flags], env=ENV)


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


def bench(url: str, rate: float, seed: int, args: argparse.Namespace, name: str, out: Path) -> dict:
    """One `ponder bench` run; each rate gets its own seed, so no rate finds the prompts of an
    earlier one in the prefix cache."""
    command = [
        sys.executable, "-m", "ponder", "bench", "--base-url", url, "--endpoint", "/v1/completions",
        "--tokenizer", str(default_model_dir()), "--dataset", "random",
        "--random-input-len", str(args.input_len), "--random-output-len", str(args.output_len),
        "--ignore-eos", "--num-prompts", str(args.num_prompts), "--request-rate", str(rate),
        "--seed", str(seed), "--slo", f"ttft={args.ttft_slo_ms}ms,tpot={args.tpot_slo_ms}ms",
        "--result-dir", str(out / "disagg_raw"), "--result-name", name, "--no-plots", "--no-progress",
    ]  # fmt: skip
    subprocess.run(command, check=True, env=ENV, stdout=subprocess.DEVNULL)
    return json.loads((out / "disagg_raw" / f"{name}.json").read_text())["runs"][0]["summary"]


def decode_transfer_share(router_url: str) -> tuple[float, float, float]:
    """(transfer s, prefill s, loads) summed on the decode worker so far."""
    workers = httpx.get(router_url + "/disagg/workers", timeout=5).json()["data"]
    decode = next(w for w in workers if w["role"] == "decode")
    text = httpx.get(decode["url"] + "/metrics", timeout=5).text
    values = {}
    for line in text.splitlines():
        for key in ("kv_transfer_seconds_total", "kv_transfer_prefill_seconds_total"):
            if line.startswith(f"ponder:{key} "):
                values[key] = float(line.split()[-1])
        if line.startswith('ponder:kv_transfer_loads_total{outcome="ok"}'):
            values["loads"] = float(line.split()[-1])
    return values["kv_transfer_seconds_total"], values["kv_transfer_prefill_seconds_total"], values["loads"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="0.1,0.2,0.35,0.5")
    parser.add_argument("--num-prompts", type=int, default=10)
    parser.add_argument("--input-len", type=int, default=320)
    parser.add_argument("--output-len", type=int, default=24)
    parser.add_argument("--ttft-slo-ms", type=float, default=6000)
    parser.add_argument("--tpot-slo-ms", type=float, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="docs/results")
    args = parser.parse_args()
    out = Path(args.out)
    rates = [float(r) for r in args.rates.split(",")]
    profile_path = out / "disagg_raw" / "disagg_profile.json"
    profile_path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "ponder", "profile", "--quick", "-o", str(profile_path)], check=True, env=ENV
    )
    model = StepModel.load(profile_path)
    colocated = start(8711, "--data-parallel-size", "2", "--router-policy", "least-load")
    disagg = start(8712, "--disagg", "1P1D", "--kv-connector", "shm", "--router-policy", "least-load")
    urls = {"colocated": "http://127.0.0.1:8711", "1P1D": "http://127.0.0.1:8712"}
    rows = []
    try:
        wait_healthy(urls["colocated"], colocated)
        wait_healthy(urls["1P1D"], disagg)
        for index, rate in enumerate(rates):
            for config, url in urls.items():
                before = decode_transfer_share(url) if config == "1P1D" else None
                summary = bench(url, rate, args.seed + index, args, f"disagg-{config}-{rate}", out)
                row = {
                    "config": config,
                    "rate": rate,
                    "attainment_pct": summary["slo_attainment_pct"],
                    "ttft_p50_ms": summary["ttft_ms"]["median"],
                    "tpot_p50_ms": summary["tpot_ms"]["median"],
                    "failed": summary["failed"],
                }
                if before is not None:
                    after = decode_transfer_share(url)
                    transfer, prefill, loads = (a - b for a, b in zip(after, before))
                    row["transfer_share_pct"] = round(100 * transfer / prefill, 2) if prefill else None
                    row["transfer_ms_mean"] = round(1000 * transfer / loads, 1) if loads else None
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        for process in (colocated, disagg):
            process.terminate()
        for process in (colocated, disagg):
            process.wait(120)
    transfer_s = statistics.mean(
        [r["transfer_ms_mean"] / 1000 for r in rows if r.get("transfer_ms_mean")] or [0.0]
    )
    for row in rows:
        reqs = poisson(
            row["rate"], max(args.num_prompts, 200), args.input_len, args.output_len, seed=args.seed
        )
        spec = (
            ClusterSpec(colocated=2)
            if row["config"] == "colocated"
            else ClusterSpec(prefill=1, decode=1, kv_transfer_s=transfer_s)
        )
        report = sim_run(reqs, spec, model, args.ttft_slo_ms / 1000, args.tpot_slo_ms / 1000)
        row["sim_attainment_pct"] = round(100 * report.attainment, 1)
        row["sim_ttft_p50_ms"] = round(1000 * report.ttft["p50"], 1)
        row["sim_tpot_p50_ms"] = round(1000 * report.tpot["p50"], 1)
    (out / "disagg.json").write_text(
        json.dumps({"args": vars(args), "profile": str(model), "rows": rows}, indent=2)
    )
    plot(rows, args, out / "disagg_attainment.png")
    print_table(rows, args, model)


def plot(rows: list[dict], args: argparse.Namespace, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for config, color in (("colocated", "tab:blue"), ("1P1D", "tab:orange")):
        mine = [r for r in rows if r["config"] == config]
        rates = [r["rate"] for r in mine]
        axes.plot(rates, [r["attainment_pct"] for r in mine], "o-", color=color, label=f"{config} measured")
        axes.plot(rates, [r["sim_attainment_pct"] for r in mine], "x--", color=color, label=f"{config} sim")
    axes.axhline(90, color="grey", linewidth=0.8, linestyle=":")
    axes.set_xlabel("request rate (req/s)")
    axes.set_ylabel("SLO attainment (%)")
    axes.set_title(
        f"in {args.input_len} / out {args.output_len}, TTFT<={args.ttft_slo_ms:g} ms, "
        f"TPOT<={args.tpot_slo_ms:g} ms\nbuilt-in model, CPU 2 cores shared, 2 workers each"
    )
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


HEADER = (
    "| config | rate req/s | attainment % | sim % | TTFT p50 ms (sim) | TPOT p50 ms (sim) "
    "| transfer / prefill |"
)


def print_table(rows: list[dict], args: argparse.Namespace, model: StepModel) -> None:
    print(f"\nprofile: {model}")
    print(HEADER)
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        share = (
            f"{r['transfer_share_pct']}% ({r['transfer_ms_mean']} ms)" if r.get("transfer_share_pct") else "-"
        )
        print(
            f"| {r['config']} | {r['rate']} | {r['attainment_pct']} | {r['sim_attainment_pct']} | "
            f"{r['ttft_p50_ms']:.0f} ({r['sim_ttft_p50_ms']:.0f}) | {r['tpot_p50_ms']:.0f} "
            f"({r['sim_tpot_p50_ms']:.0f}) | {share} |"
        )
    for config in ("colocated", "1P1D"):
        ok = [r["rate"] for r in rows if r["config"] == config and (r["attainment_pct"] or 0) >= 90]
        sim_ok = [r["rate"] for r in rows if r["config"] == config and r["sim_attainment_pct"] >= 90]
        print(
            f"{config}: highest rate with >= 90% attainment: measured {max(ok, default=None)}, "
            f"sim {max(sim_ok, default=None)}"
        )


if __name__ == "__main__":
    main()
