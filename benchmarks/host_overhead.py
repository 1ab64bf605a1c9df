"""Host time of one decode step on the CPU: batch 128 on a tiny model, the model timed apart.

Usage (repo root):
    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/host_overhead.py [--modes sync,async]
        [--batch 128] [--prompt-len 32] [--output-len 128] [--repeats 3]
        [--output-kind cumulative|final_only] [--baseline-src OLD/src] [--profile]

On the GPU the model forward and the sampler's tensor work are device time; everything else a
step does (schedule, input arrays, uploads, sampler bookkeeping, appending tokens, detokenizing,
stop checks, outputs) is host time that the GPU waits for unless it overlaps. This script
measures that host time where it can be measured without a GPU: the step's wall time minus the
time spent inside the model's forward and LM head (which run inline on the CPU). The model is a
random-init 1-layer Qwen3 (hidden 64, vocab 331). Every request makes exactly --output-len
tokens (greedy, eos ignored); only pure decode steps (all 128 sequences decoding) are counted.
Modes take turns, --repeats rounds; prints one JSON line per mode: the median host time per
decode step (wall clock, and this thread's CPU time, which other processes on a shared
machine disturb less).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import platform
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def clocks() -> tuple[float, float]:
    """(wall seconds, this thread's CPU seconds). CPU time leaves out the time other processes
    take the core away, so it is the steadier measure on a shared machine."""
    return time.perf_counter(), time.thread_time()


def time_model(model) -> list[float]:
    """Wrap the model's forward and LM head; the returned list accumulates their (wall, CPU)
    seconds."""
    spent = [0.0, 0.0]

    def timed(fn):
        def wrapper(*args, **kwargs):
            wall, cpu = clocks()
            result = fn(*args, **kwargs)
            wall_end, cpu_end = clocks()
            spent[0] += wall_end - wall
            spent[1] += cpu_end - cpu
            return result

        return wrapper

    model.forward = timed(model.forward)
    model.compute_logits = timed(model.compute_logits)
    return spent


def ponder_modules() -> dict[str, ModuleType]:
    import ponder.llm  # noqa: F401  (the package and the engine modules it pulls in)

    return {name: module for name, module in sys.modules.items() if name.split(".")[0] == "ponder"}


def activate(modules: dict[str, ModuleType]) -> None:
    """Make `modules` the ponder that imports (also lazy ones inside functions) resolve to."""
    for name in [name for name in sys.modules if name.split(".")[0] == "ponder"]:
        del sys.modules[name]
    sys.modules.update(modules)


def load_ponder(src: Path) -> dict[str, ModuleType]:
    """Import the ponder package under src/ next to the current one; returns its modules."""
    current = ponder_modules()
    activate({})
    sys.path.insert(0, str(src))
    try:
        loaded = ponder_modules()
    finally:
        sys.path.remove(str(src))
        activate(current)
    return loaded


def run_once(llm, args, profiler: cProfile.Profile | None) -> dict:
    from ponder.engine.sampling_params import RequestOutputKind, SamplingParams

    engine = llm.engine
    model_seconds = time_model(engine.runner.model)
    kind = RequestOutputKind[args.output_kind.upper()]
    params = SamplingParams(temperature=0.0, max_tokens=args.output_len, ignore_eos=True, output_kind=kind)
    generator = torch.Generator().manual_seed(0)
    prompts = torch.randint(10, 300, (args.batch, args.prompt_len), generator=generator).tolist()
    for index, prompt in enumerate(prompts):
        engine.add_request(f"r{time.monotonic_ns()}-{index}", {"prompt_token_ids": prompt}, params)
    host: list[float] = []
    host_cpu: list[float] = []
    model: list[float] = []
    while engine.has_unfinished_requests():
        prompt_before = engine.stats().prompt_tokens_computed
        decoding = len(engine.scheduler.running) == args.batch and not engine.scheduler.waiting
        model_seconds[:] = [0.0, 0.0]
        wall, cpu = clocks()
        if profiler is not None and decoding:
            profiler.enable()
        engine.step()
        if profiler is not None:
            profiler.disable()
        wall_end, cpu_end = clocks()
        if decoding and engine.stats().prompt_tokens_computed == prompt_before:
            host.append(wall_end - wall - model_seconds[0])
            host_cpu.append(cpu_end - cpu - model_seconds[1])
            model.append(model_seconds[0])
    del engine.runner.model.forward, engine.runner.model.compute_logits
    return {"host": host, "host_cpu": host_cpu, "model": model}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--modes", default="sync,async", help="sync, async (async needs this branch)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--prompt-len", type=int, default=32)
    parser.add_argument("--output-len", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output-kind", default="cumulative", choices=["cumulative", "final_only"])
    parser.add_argument("--profile", action="store_true", help="print where the host time goes")
    parser.add_argument(
        "--baseline-src",
        type=Path,
        default=None,
        help="a src/ dir of another ponder version (e.g. `git archive` of a commit): its engine "
        "runs too, as mode 'baseline' (synchronous), taking turns with the others in this process",
    )
    args = parser.parse_args()

    from tests.fixtures.checkpoints import make_checkpoint

    current = ponder_modules()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = make_checkpoint(Path(tmp) / "tiny", "qwen3", num_layers=1, max_position_embeddings=1024)
        modes = args.modes.split(",")
        packages = {"sync": current, "async": current}
        if args.baseline_src is not None:
            modes.insert(0, "baseline")
            packages["baseline"] = load_ponder(args.baseline_src)
        llms = {}
        for mode in modes:
            activate(packages[mode])
            knobs = {"async_scheduling": True} if mode == "async" else {}
            llms[mode] = packages[mode]["ponder"].LLM(
                str(model_dir),
                max_num_seqs=args.batch,
                max_num_batched_tokens=8192,
                kv_cache_memory=1 << 26,
                **knobs,
            )
            run_once(llms[mode], args, None)  # warm-up
        profilers = {mode: cProfile.Profile() if args.profile else None for mode in modes}
        runs: dict[str, list[dict]] = {mode: [] for mode in modes}
        for _ in range(args.repeats):  # modes take turns, so drift on the machine hits all
            for mode in modes:
                activate(packages[mode])
                runs[mode].append(run_once(llms[mode], args, profilers[mode]))
        for mode in modes:
            host = [seconds for run in runs[mode] for seconds in run["host"]]
            host_cpu = [seconds for run in runs[mode] for seconds in run["host_cpu"]]
            model = [seconds for run in runs[mode] for seconds in run["model"]]
            profiler = profilers[mode]
            print(
                json.dumps(
                    {
                        "mode": mode,
                        "source": str(Path(packages[mode]["ponder"].__file__).parents[1]),
                        # Medians over every decode step of every repeat: the 2-core dev machine
                        # is shared, and a median shrugs off the steps another process stole.
                        "host_ms_per_step": 1e3 * statistics.median(host),
                        "host_cpu_ms_per_step": 1e3 * statistics.median(host_cpu),
                        "model_ms_per_step": 1e3 * statistics.median(model),
                        "decode_steps": len(runs[mode][0]["host"]),
                        "batch": args.batch,
                        "output_kind": args.output_kind,
                        "date": time.strftime("%Y-%m-%d"),
                        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}",
                    }
                ),
                flush=True,
            )
            if profiler is not None:
                pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
