"""Profile a few decode steps of one engine configuration: where the host spends and waits.

On the device, from the repo root:

    PYTHONPATH=src:. python3 benchmarks/profile_decode.py --shape qwen3-0.6b --batch 1 --context 32768

Prints each step's wall time and device wait, then torch.profiler's CUDA-API and CPU-op table
sorted by self CPU time (cudaEventSynchronize, cudaStreamSynchronize or cudaHostAlloc near the
top mean the host blocked on the GPU).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from benchmarks.throughput import make_checkpoint, ponder_llm, random_prompts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shape", default="qwen3-0.6b")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--context", type=int, default=32768)
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--scheduling", default="async,sync")
    parser.add_argument("--model-dir", type=Path, help="an existing checkpoint of --shape")
    parser.add_argument(
        "--async-min-batch-size",
        type=int,
        default=1,
        help="the engine finishes smaller steps synchronously (1: every step stays in flight)",
    )
    parser.add_argument("--trace-dir", type=Path, help="write one Chrome trace per mode here")
    args = parser.parse_args()
    model_dir = args.model_dir or Path(tempfile.mkdtemp()) / args.shape
    if args.model_dir is None:
        make_checkpoint(args.shape, model_dir)
    torch.cuda.empty_cache()
    llm = ponder_llm(
        model_dir,
        max_num_seqs=max(4, args.batch),
        max_num_batched_tokens=8192,
        max_model_len=args.context + 4 * args.steps + 64,
    )
    from ponder import SamplingParams

    engine = llm.engine
    engine._async_min_batch_size = args.async_min_batch_size
    prompts = random_prompts(args.batch, args.context - 1, seed=1)
    for mode in args.scheduling.split(","):
        engine.async_scheduling = mode == "async"
        engine.reset_prefix_cache()
        params = SamplingParams(temperature=0.0, max_tokens=3 * args.steps, ignore_eos=True)
        for index, prompt in enumerate(prompts):
            engine.add_request(f"{mode}-{index}", {"prompt_token_ids": prompt}, params)
        while engine.scheduler.waiting or any(
            s.num_computed_tokens < s.num_prompt_tokens for s in engine.scheduler.running
        ):
            engine.step()  # prefill
        for _ in range(args.steps):  # warm decode
            engine.step()
        torch.cuda.synchronize()
        walls, waits = [], []
        with torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
        ) as prof:
            for _ in range(args.steps):
                wait_before, start = engine.device_wait_seconds, time.perf_counter()
                engine.step()
                walls.append((time.perf_counter() - start) * 1e3)
                waits.append((engine.device_wait_seconds - wait_before) * 1e3)
        print(
            f"== {mode} batch {args.batch} context {args.context}: step ms",
            " ".join(f"{w:.1f}" for w in walls),
            "| wait ms",
            " ".join(f"{w:.1f}" for w in waits),
        )
        table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18)
        if args.trace_dir is not None:
            args.trace_dir.mkdir(parents=True, exist_ok=True)
            prof.export_chrome_trace(str(args.trace_dir / f"{mode}_b{args.batch}_c{args.context}.json"))
        print(table)
        while engine.has_unfinished_requests():
            engine.step()


if __name__ == "__main__":
    main()
