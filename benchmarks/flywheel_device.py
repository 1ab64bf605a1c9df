"""Fine-tune the built-in model with answers that carry their working (`--preset working`), then
measure shipped vs candidate on the one GPU within a fixed wall-clock budget (issue 20):

1. train the candidate from the shipped weights (`python -m ponder.train --preset working`);
2. main task (`ponder eval --tasks all --difficulty easy,medium,hard --limit 32`: also the check
   that no family regressed) and robustness (`benchmarks/robustness.sh`: canonical and
   paraphrased easy items; greedy, thinking_budget 16/64, effort none) for both models;
3. the test-time-scaling figure's 768 hard problems (`--item-seed` 0-3 x 32 per family) with
   greedy, self_consistency n=16 and the confidence early-stop recipe at temperature 1.2 /
   top-p 0.9, float32, for both models, in shards (a seed x a group of families, each its own
   `ponder eval` process) run side by side on the GPU: the engine is host-bound on this tiny
   model, so several processes fill the GPU better than one. Each shard keeps the sampling seed
   every problem had in the whole-set run (`--sample-seed` = its first problem's index);
4. merge: tables and JSON under OUT (summary.md, summary.json), the raw eval files as
   results.tar.gz, the candidate as OUT/candidate (weights split in 15 MiB parts: the device
   returns files up to 16 MiB; `cat model.safetensors.part-* > model.safetensors`).

Shipped-model evals start while the candidate trains; every process is stopped at the deadline,
and the merge uses only the shards both models finished (a paired subset, reported as such).

    PYTHONPATH=src python3 benchmarks/flywheel_device.py --out $OUT              # GPU, ~9 min
    python benchmarks/flywheel_device.py --out /tmp/fw --smoke                   # CPU, same path

Promotion rule (summary.json "promote"): the candidate replaces the shipped weights only if its
main-task accuracy does not drop (over all main items) and its robustness rises (mean over the
six robustness conditions without a whole thought: budget 16/64 and effort none, canonical and
paraphrased).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "src" / "ponder" / "assets" / "ponder-reasoner"
FAMILIES = ("arithmetic", "boxes", "ordering", "counting", "equations", "word_problems")
BENCHMARKS_GREEDY_768 = 43.9  # BENCHMARKS.md: greedy 42.2 / 42.2 / 43.2 / 47.9 % on seeds 0-3
_Z95 = 1.959964
PART_BYTES = 15 * 2**20


@dataclass
class Job:
    name: str
    cmd: list[str]
    model: str  # "shipped" | "candidate"
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    started: float = 0.0
    ended: float = 0.0
    rc: int | None = None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "/tmp/fw-out")))
    parser.add_argument("--work", type=Path, default=Path("/tmp/fw-work"))
    parser.add_argument("--smoke", action="store_true", help="CPU: tiny steps and limits, same path")
    parser.add_argument("--steps", type=int, default=None, help="fine-tune steps (default 800; smoke 2)")
    parser.add_argument("--preset", default="working")
    parser.add_argument("--config", default=None, help="extra TrainConfig JSON for the candidate")
    parser.add_argument(
        "--budget-s", type=float, default=None, help="wall budget in s (default 470; smoke 900)"
    )
    parser.add_argument("--parallel", type=int, default=None, help="eval processes at once (default 9)")
    parser.add_argument("--parallel-training", type=int, default=None, help="... while training (default 5)")
    parser.add_argument("--seeds", default="0,1,2,3", help="item seeds of the 192-problem hard sets")
    parser.add_argument("--groups", type=int, default=3, help="family groups per seed (shards)")
    parser.add_argument("--candidate", type=Path, default=None, help="skip training: use this model")
    args = parser.parse_args()
    smoke = args.smoke
    steps = args.steps if args.steps is not None else (2 if smoke else 800)
    budget = args.budget_s if args.budget_s is not None else (900.0 if smoke else 470.0)
    parallel = args.parallel or (2 if smoke else 9)
    parallel_training = args.parallel_training or (1 if smoke else 5)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if smoke:
        seeds = seeds[:1]
    start = time.monotonic()
    deadline = start + budget
    out, work = args.out, args.work
    shutil.rmtree(work, ignore_errors=True)
    res = work / "res"
    res.mkdir(parents=True)
    out.mkdir(parents=True, exist_ok=True)

    env = {"PYTHONPATH": str(ROOT / "src"), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1" if smoke else "2"}
    python = sys.executable
    ponder = [python, "-m", "ponder"]
    candidate = args.candidate or work / "cand" / "model"

    train: Job | None = None
    if args.candidate is None:
        train_cmd = [python, "-m", "ponder.train", "--preset", args.preset, "--steps", str(steps)]
        train_cmd += ["--out-dir", str(work / "cand"), "--no-progress", "--log-every", "1" if smoke else "50"]
        if args.config:
            train_cmd += ["--config", args.config]
        if smoke:  # a CPU fine-tune of two small steps: the path, not the result
            train_cmd += ["--batch-size", "2", "--seq-len", "1024", "--num-workers", "0", "--no-compile"]
            train_cmd += ["--warmup-steps", "1", "--checkpoint-every", "1000"]
        train = Job("train", train_cmd, "candidate", res / "train.log", {**env, "OMP_NUM_THREADS": "2"})

    jobs = eval_jobs(ponder, SHIPPED, "shipped", res, env, smoke, seeds, args.groups)
    jobs += eval_jobs(ponder, candidate, "candidate", res, env, smoke, seeds, args.groups)
    order = interleave(jobs)  # shipped shards first while training, then pairs

    running: list[Job] = []
    if train is not None:
        launch(train)
        running.append(train)
    pending = list(order)
    while (pending or running) and time.monotonic() < deadline:
        for job in list(running):
            if job.proc is not None and job.proc.poll() is not None:
                job.rc, job.ended = job.proc.returncode, time.monotonic()
                running.remove(job)
                log(f"{job.name}: rc {job.rc} after {job.ended - job.started:.0f} s", start)
        trained = train is None or (train.rc == 0)
        if train is not None and train.rc not in (None, 0):
            pending = [job for job in pending if job.model != "candidate"]  # nothing to evaluate
        training = train is not None and train.rc is None
        limit = parallel_training if training else parallel
        evals_running = sum(job is not train for job in running)
        while pending and evals_running < limit:
            ready = [job for job in pending if job.model == "shipped" or trained]
            if not ready:
                break
            job = ready[0]
            pending.remove(job)
            launch(job)
            running.append(job)
            evals_running += 1
        time.sleep(0.5)
    for job in running:  # the deadline: stop what is left; finished shards still count
        stop(job)
        log(f"{job.name}: stopped at the deadline", start)
    for job in pending:
        log(f"{job.name}: not started (deadline)", start)

    finished = time.monotonic() - start
    summary = merge(res, jobs, train, seeds, smoke)
    summary["wall_s"] = round(finished, 1)
    summary["jobs"] = [
        {"name": j.name, "rc": j.rc, "s": round(j.ended - j.started, 1) if j.ended else None}
        for j in ([train] if train else []) + jobs
    ]
    if train is not None and train.rc == 0:
        summary["candidate"] = save_candidate(candidate, out / "candidate")
        shutil.copy(work / "cand" / "train_log.jsonl", res / "train_log.jsonl")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "summary.md").write_text(render(summary))
    with tarfile.open(out / "results.tar.gz", "w:gz") as tar:
        tar.add(res, arcname="res")
    split_big(out / "results.tar.gz")
    print(render(summary))
    log(f"done in {time.monotonic() - start:.0f} s; outputs in {out}", start)


def eval_jobs(
    ponder: list[str],
    model: Path,
    name: str,
    res: Path,
    env: dict,
    smoke: bool,
    seeds: list[int],
    groups: int,
) -> list[Job]:
    jobs = []
    limit = "1" if smoke else "32"
    main_cmd = [*ponder, "eval", "--model", str(model), "--tasks", "all", "--difficulty", "easy,medium,hard"]
    main_cmd += [
        "--limit",
        limit,
        "--concurrency",
        "96",
        "--no-progress",
        "--json",
        str(res / f"main-{name}.json"),
    ]
    # a fixed KV pool on the GPU (what the default sizing caps it at anyway), so that processes
    # side by side never size theirs from what the others left free
    kv = [] if smoke else ["--kv-cache-memory", "2GiB"]
    main_cmd += kv
    if smoke:
        main_cmd += ["--max-tokens", "96"]
    jobs.append(Job(f"main-{name}", main_cmd, name, res / f"main-{name}.log", env))
    rob_env = {**env, "PONDER": " ".join(ponder), "EVAL_ARGS": " ".join(["--concurrency", "96", *kv])}
    if smoke:
        rob_env["EVAL_ARGS"] += " --max-tokens 48"
    rob_cmd = [
        "bash",
        str(ROOT / "benchmarks" / "robustness.sh"),
        str(model),
        str(res / f"rob-{name}"),
        limit,
    ]
    jobs.append(Job(f"rob-{name}", rob_cmd, name, res / f"rob-{name}.log", rob_env))
    n = 6 if smoke else 16
    strategies = [
        "greedy",
        f"self_consistency:n={n},label=sc{n}",
        f"confidence:n={n},wave=2,probe_every=32,agree=1,stop_rule=beta,consensus=0.9,label=conf{n}",
    ]
    size = -(-len(FAMILIES) // groups)
    for seed in seeds:
        for group in range(groups):
            first = group * size
            families = FAMILIES[first : first + size]
            if not families:
                continue
            per_family = 1 if smoke else 32
            cmd = [
                *ponder,
                "eval",
                "--model",
                str(model),
                "--tasks",
                ",".join(families),
                "--difficulty",
                "hard",
            ]
            cmd += [
                "--limit",
                str(per_family),
                "--item-seed",
                str(seed),
                "--sample-seed",
                str(first * per_family),
            ]
            cmd += ["--temperature", "1.2", "--top-p", "0.9", "--dtype", "float32", "--no-progress"]
            cmd += ["--concurrency", "192", "--kv-cache-memory", "1GiB" if smoke else "4GiB"]
            cmd += ["--max-tokens", "64" if smoke else "1536"]
            for strategy in strategies:
                cmd += ["--strategy", strategy]
            tag = f"tts-{name}-s{seed}-g{group}"
            cmd += ["--json", str(res / f"{tag}.json")]
            jobs.append(Job(tag, cmd, name, res / f"{tag}.log", env))
    return jobs


def interleave(jobs: list[Job]) -> list[Job]:
    """Shipped jobs first (they can run while the candidate trains), each candidate job right
    after its shipped twin; small jobs (main, robustness) before the shards."""
    shipped = [j for j in jobs if j.model == "shipped"]
    candidate = {j.name.replace("-candidate", "-shipped"): j for j in jobs if j.model == "candidate"}
    order = []
    for job in shipped:
        order.append(job)
        if job.name in candidate:
            order.append(candidate.pop(job.name))
    return order + list(candidate.values())


def launch(job: Job) -> None:
    job.started = time.monotonic()
    handle = job.log.open("w")
    job.proc = subprocess.Popen(
        job.cmd, cwd=ROOT, env={**os.environ, **job.env}, stdout=handle, stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so a stop reaches its children too
    )  # fmt: skip


def stop(job: Job) -> None:
    if job.proc is None or job.proc.poll() is not None:
        return
    os.killpg(job.proc.pid, signal.SIGTERM)
    try:
        job.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(job.proc.pid, signal.SIGKILL)
        job.proc.wait()
    job.rc, job.ended = job.proc.returncode, time.monotonic()


def log(message: str, start: float) -> None:
    print(f"[{time.monotonic() - start:6.1f} s] {message}", flush=True)


# ---- merge -------------------------------------------------------------------------------------


def load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def items_by_label(report: dict) -> dict[str, list[dict]]:
    return {s["label"]: s["items"] for s in report["strategies"]}


def accuracy(items: list[dict]) -> float:
    return 100.0 * sum(i["correct"] for i in items) / len(items) if items else float("nan")


def key(item: dict) -> tuple:
    return (item["family"], item["difficulty"], item["item_id"])


def paired(a: list[dict], b: list[dict]) -> dict:
    """a minus b on the problems both have: points, 95% normal interval, n."""
    theirs = {key(i): i for i in b}
    diffs = [int(i["correct"]) - int(theirs[key(i)]["correct"]) for i in a if key(i) in theirs]
    n = len(diffs)
    if n == 0:
        return {"n": 0}
    mean = sum(diffs) / n
    var = sum((d - mean) ** 2 for d in diffs) / (n - 1) if n > 1 else 0.0
    half = _Z95 * math.sqrt(var / n)
    return {"n": n, "diff": 100 * mean, "ci95": [100 * (mean - half), 100 * (mean + half)]}


def tokens(items: list[dict]) -> float:
    return sum(i["generated_tokens"] for i in items) / len(items) if items else float("nan")


def merge(res: Path, jobs: list[Job], train: Job | None, seeds: list[int], smoke: bool) -> dict:
    summary: dict = {"smoke": smoke, "seeds": seeds}
    if train is not None:
        summary["train"] = {
            "rc": train.rc,
            "s": round(train.ended - train.started, 1) if train.ended else None,
        }
    # main task
    main = {}
    for name in ("shipped", "candidate"):
        report = load(res / f"main-{name}.json")
        if report:
            items = items_by_label(report)["greedy"]
            per = {}
            for family in FAMILIES:
                for level in ("easy", "medium", "hard"):
                    cell = [i for i in items if i["family"] == family and i["difficulty"] == level]
                    if cell:
                        per[f"{family}/{level}"] = accuracy(cell)
            main[name] = {"items": items, "all": accuracy(items), "cells": per, "tokens": tokens(items)}
    summary["main"] = {name: {k: v for k, v in m.items() if k != "items"} for name, m in main.items()}
    if len(main) == 2:
        summary["main"]["candidate_vs_shipped"] = paired(main["candidate"]["items"], main["shipped"]["items"])
        summary["main"]["regressions"] = {
            cell: [main["shipped"]["cells"][cell], acc]
            for cell, acc in main["candidate"]["cells"].items()
            if acc < main["shipped"]["cells"].get(cell, 0) - 10  # > 10 points (32 items: +-8 noise)
        }
    # robustness
    rob: dict = {}
    for name in ("shipped", "candidate"):
        for phrasing in ("canonical", "paraphrase"):
            for mode in ("think", "nothink"):
                report = load(res / f"rob-{name}-{phrasing}-{mode}.json")
                if not report:
                    continue
                for label, items in items_by_label(report).items():
                    condition = f"{phrasing}, {'effort none' if mode == 'nothink' else label}"
                    per_family = {f: accuracy([i for i in items if i["family"] == f]) for f in FAMILIES}
                    rob.setdefault(condition, {})[name] = {
                        "acc": accuracy(items),
                        "empty": sum(i["answer"] is None for i in items),
                        "n": len(items),
                        "tokens": tokens(items),
                        "families": per_family,
                    }
    summary["robustness"] = rob
    short = [c for c in rob if "greedy" not in c or "effort none" in c]

    def robust_mean(name: str) -> float | None:
        values = [rob[c][name]["acc"] for c in short if name in rob[c]]
        return sum(values) / len(values) if len(values) == len(short) and short else None

    summary["robustness_mean"] = {name: robust_mean(name) for name in ("shipped", "candidate")}
    # test-time scaling on the hard sets
    tts: dict = {}
    shards = sorted({j.name.split("-", 2)[2] for j in jobs if j.name.startswith("tts-")})
    both = [
        s for s in shards if load(res / f"tts-shipped-{s}.json") and load(res / f"tts-candidate-{s}.json")
    ]
    summary["tts_shards"] = {"all": shards, "paired": both}
    for name in ("shipped", "candidate"):
        pooled: dict[str, list[dict]] = {}
        per_seed: dict[str, dict[str, list[dict]]] = {}
        # the paired shards; a model alone (its twin never ran) is scored on its own shards
        own = both or [shard for shard in shards if load(res / f"tts-{name}-{shard}.json")]
        for shard in own:
            report = load(res / f"tts-{name}-{shard}.json")
            assert report is not None
            for label, items in items_by_label(report).items():
                pooled.setdefault(label, []).extend(items)
                per_seed.setdefault(shard.split("-")[0], {}).setdefault(label, []).extend(items)
        if not pooled:
            continue
        labels = list(pooled)
        greedy, sc, conf = (pooled[label] for label in labels[:3])
        tts[name] = {
            "problems": len(greedy),
            "strategies": {label: {"acc": accuracy(v), "tokens": tokens(v)} for label, v in pooled.items()},
            "sc_vs_greedy": paired(sc, greedy),
            "conf_vs_sc": {**paired(conf, sc), "tokens_change": 100 * (tokens(conf) / tokens(sc) - 1)},
            "labels": labels[:3],
            "per_seed": {
                seed: {label: round(accuracy(v), 1) for label, v in by.items()}
                for seed, by in per_seed.items()
            },
            "shards": own,
            "_items": {"greedy": greedy},
        }
    if "shipped" in tts and "candidate" in tts:
        summary["tts_candidate_vs_shipped_greedy"] = paired(
            tts["candidate"]["_items"]["greedy"], tts["shipped"]["_items"]["greedy"]
        )
    for entry in tts.values():
        entry.pop("_items")
        sc, conf = entry["sc_vs_greedy"], entry["conf_vs_sc"]
        greedy_acc = entry["strategies"][entry["labels"][0]]["acc"]
        entry["targets"] = {
            "sc16_ge_greedy_plus_15": sc.get("diff", -1e9) >= 15,
            "sc16_ci_low_ge_15": sc.get("ci95", [-1e9])[0] >= 15,
            "conf_within_1_of_sc16": conf.get("diff", -1e9) >= -1,
            "conf_tokens_40pct_fewer": conf["tokens_change"] <= -40,
            "greedy_above_benchmarks_43.9": greedy_acc > BENCHMARKS_GREEDY_768,
        }
    summary["tts"] = tts
    # promotion rule
    if len(main) == 2 and None not in summary["robustness_mean"].values():
        no_drop = main["candidate"]["all"] >= main["shipped"]["all"]
        means = summary["robustness_mean"]
        rises = means["candidate"] > means["shipped"]
        summary["promote"] = {
            "main_no_drop": no_drop,
            "robustness_rises": rises,
            "promote": no_drop and rises,
        }
    else:
        summary["promote"] = {"promote": False, "why": "main or robustness evals missing"}
    return summary


def render(s: dict) -> str:
    lines = [f"# Flywheel device run{' (SMOKE: CPU, tiny limits; no figure)' if s['smoke'] else ''}", ""]
    if "train" in s:
        lines += [f"Fine-tune: rc {s['train']['rc']}, {s['train']['s']} s. Wall {s.get('wall_s')} s.", ""]
    main = s["main"]
    if main:
        lines += ["## Main task (greedy, easy/medium/hard, every family)", ""]
        lines += ["| cell | shipped | candidate |", "|---|---|---|"]
        cells = sorted({c for m in main.values() if "cells" in m for c in m["cells"]})
        for cell in cells:
            row = [
                f"{main[n]['cells'].get(cell, float('nan')):.1f}" if n in main else "-"
                for n in ("shipped", "candidate")
            ]
            lines.append(f"| {cell} | {' | '.join(row)} |")
        row = [f"{main[n]['all']:.1f}" if n in main else "-" for n in ("shipped", "candidate")]
        lines += [f"| **all** | {' | '.join(row)} |", ""]
        if "candidate_vs_shipped" in main:
            lines += [f"candidate - shipped: {fmt_paired(main['candidate_vs_shipped'])}"]
            lines += [f"cells dropping > 10 points: {main['regressions'] or 'none'}", ""]
    if s["robustness"]:
        lines += ["## Robustness (easy items, accuracy % (empty answers))", ""]
        lines += ["| condition | shipped | candidate |", "|---|---|---|"]
        for condition, by in s["robustness"].items():
            row = [
                f"{by[n]['acc']:.1f} ({by[n]['empty']})" if n in by else "-" for n in ("shipped", "candidate")
            ]
            lines.append(f"| {condition} | {' | '.join(row)} |")
        means = s["robustness_mean"]
        lines += ["", f"mean over the conditions without a whole thought: {means}", ""]
        lines += ["Per family (effort none / thinking_budget 16, canonical):", ""]
        for name in ("shipped", "candidate"):
            none = s["robustness"].get("canonical, effort none", {}).get(name)
            b16 = next(
                (
                    by.get(name)
                    for c, by in s["robustness"].items()
                    if c.startswith("canonical") and "=16" in c
                ),
                None,
            )
            if none and b16:
                fams = ", ".join(f"{f} {none['families'][f]:.0f}/{b16['families'][f]:.0f}" for f in FAMILIES)
                lines.append(f"- {name}: {fams}")
        lines.append("")
    shards = s["tts_shards"]
    lines += ["## Hard sets: greedy vs SC vs confidence early stop (T 1.2, top-p 0.9, float32)", ""]
    lines += [
        f"paired shards: {len(shards['paired'])} of {len(shards['all'])} ({', '.join(shards['paired'])})",
        "",
    ]
    for name, entry in s["tts"].items():
        lines += [f"**{name}** ({entry['problems']} problems):", ""]
        lines += ["| strategy | accuracy | tokens/problem |", "|---|---|---|"]
        for label, value in entry["strategies"].items():
            lines.append(f"| {label} | {value['acc']:.1f}% | {value['tokens']:,.0f} |")
        conf = entry["conf_vs_sc"]
        lines += ["", f"- SC vs greedy: {fmt_paired(entry['sc_vs_greedy'])}"]
        lines += [f"- confidence vs SC: {fmt_paired(conf)}, tokens {conf['tokens_change']:+.1f}%"]
        lines += [f"- per seed (problems of the shards run): {entry['per_seed']}"]
        lines += [f"- targets: {entry['targets']}", ""]
    if "tts_candidate_vs_shipped_greedy" in s:
        lines += [f"greedy, candidate - shipped: {fmt_paired(s['tts_candidate_vs_shipped_greedy'])}", ""]
    lines += [f"## Promotion: {s['promote']}", ""]
    if "candidate" in s:
        lines += [f"candidate checkpoint: {s['candidate']}", ""]
    return "\n".join(lines)


def fmt_paired(p: dict) -> str:
    if not p.get("n"):
        return "no paired problems"
    return f"{p['diff']:+.1f} points (95% CI {p['ci95'][0]:+.1f} to {p['ci95'][1]:+.1f}, n={p['n']})"


def save_candidate(model: Path, dest: Path) -> dict:
    """The candidate's files, its weights split under the device's 16 MiB file limit."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    info: dict = {"files": {}}
    for path in sorted(model.iterdir()):
        if path.is_file():
            info["files"][path.name] = path.stat().st_size
            if path.suffix == ".safetensors":
                info["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
                split_file(path, dest)
            else:
                shutil.copy(path, dest / path.name)
    info["join"] = "cat model.safetensors.part-* > model.safetensors && rm model.safetensors.part-*"
    (dest / "JOIN.txt").write_text(json.dumps(info, indent=2) + "\n")
    return info


def split_file(path: Path, dest: Path) -> None:
    data = path.read_bytes()
    for index in range(0, max(1, -(-len(data) // PART_BYTES))):
        suffix = chr(ord("a") + index // 26) + chr(ord("a") + index % 26)
        (dest / f"{path.name}.part-{suffix}").write_bytes(data[index * PART_BYTES : (index + 1) * PART_BYTES])


def split_big(path: Path) -> None:
    if path.stat().st_size > PART_BYTES:
        split_file(path, path.parent)
        path.unlink()


if __name__ == "__main__":
    main()
