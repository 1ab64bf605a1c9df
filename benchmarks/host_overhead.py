"""Host time of one decode step on the CPU: batch 128 on a tiny model, the model timed apart.

Usage (repo root):
    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/host_overhead.py [--modes sync,async]
        [--batch 128] [--prompt-len 32] [--output-len 128] [--repeats 3]
        [--output-kind cumulative|final_only] [--profile]

On the GPU the model forward and the sampler's tensor work are device time; everything else a
step does (schedule, input arrays, uploads, sampler bookkeeping, appending tokens, detokenizing,
stop checks, outputs) is host time that the GPU waits for unless it overlaps. This script
measures that host time where it can be measured without a GPU: the step's wall time minus the
time spent inside the model's forward and LM head (which run inline on the CPU). The model is a
random-init 1-layer Qwen3 (hidden 64, vocab 331). Every request makes exactly --output-len
tokens (greedy, eos ignored); only pure decode steps (all 128 sequences decoding) are counted.
Prints one JSON line per mode: the median (and mean) host time over the decode steps of
--repeats runs.
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

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def time_model(model) -> list[float]:
    """Wrap the model's forward and LM head; the returned list accumulates their seconds."""
    spent = [0.0]

    def timed(fn):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            result = fn(*args, **kwargs)
            spent[0] += time.perf_counter() - start
            return result

        return wrapper

    model.forward = timed(model.forward)
    model.compute_logits = timed(model.compute_logits)
    return spent


def run_once(llm, args, profiler: cProfile.Profile | None) -> dict:
    from ponder import SamplingParams
    from ponder.engine.sampling_params import RequestOutputKind

    engine = llm.engine
    model_seconds = time_model(engine.runner.model)
    kind = RequestOutputKind[args.output_kind.upper()]
    params = SamplingParams(temperature=0.0, max_tokens=args.output_len, ignore_eos=True, output_kind=kind)
    generator = torch.Generator().manual_seed(0)
    prompts = torch.randint(10, 300, (args.batch, args.prompt_len), generator=generator).tolist()
    for index, prompt in enumerate(prompts):
        engine.add_request(f"r{time.monotonic_ns()}-{index}", {"prompt_token_ids": prompt}, params)
    host: list[float] = []
    model: list[float] = []
    while engine.has_unfinished_requests():
        prompt_before = engine.stats().prompt_tokens_computed
        decoding = len(engine.scheduler.running) == args.batch and not engine.scheduler.waiting
        model_seconds[0] = 0.0
        start = time.perf_counter()
        if profiler is not None and decoding:
            profiler.enable()
        engine.step()
        if profiler is not None:
            profiler.disable()
        wall = time.perf_counter() - start
        if decoding and engine.stats().prompt_tokens_computed == prompt_before:
            host.append(wall - model_seconds[0])
            model.append(model_seconds[0])
    del engine.runner.model.forward, engine.runner.model.compute_logits
    return {"host": host, "model": model}


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
    args = parser.parse_args()

    from tests.fixtures.checkpoints import make_checkpoint

    from ponder import LLM

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = make_checkpoint(Path(tmp) / "tiny", "qwen3", num_layers=1, max_position_embeddings=1024)
        for mode in args.modes.split(","):
            knobs = {"async_scheduling": True} if mode == "async" else {}
            llm = LLM(
                str(model_dir),
                max_num_seqs=args.batch,
                max_num_batched_tokens=8192,
                kv_cache_memory=1 << 26,
                **knobs,
            )
            run_once(llm, args, None)  # warm-up
            profiler = cProfile.Profile() if args.profile else None
            runs = [run_once(llm, args, profiler) for _ in range(args.repeats)]
            host = [seconds for run in runs for seconds in run["host"]]
            model = [seconds for run in runs for seconds in run["model"]]
            print(
                json.dumps(
                    {
                        "mode": mode,
                        # Medians over every decode step of every repeat: the 2-core dev machine
                        # is shared, and a median shrugs off the steps another process stole.
                        "host_ms_per_step": 1e3 * statistics.median(host),
                        "host_ms_mean": 1e3 * statistics.fmean(host),
                        "model_ms_per_step": 1e3 * statistics.median(model),
                        "decode_steps": len(runs[0]["host"]),
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
