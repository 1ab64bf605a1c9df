"""Where the GPU time of a decode step (or one long prefill) goes, kernel by kernel.

On the device, from the repo root:

    PYTHONPATH=src:. python3 benchmarks/kernel_breakdown.py --shape qwen3-0.6b --batch 128 --context 640
    PYTHONPATH=src:. python3 benchmarks/kernel_breakdown.py --shape qwen3-8b --prefill 8192

Prints the GPU time per step and, per kernel name, its share of it: the table that says which
kernel keeps a step from its roofline (decode: bytes read once / copy bandwidth; prefill: FLOPs /
matmul peak).
"""

from __future__ import annotations

import argparse
import tempfile
from collections import defaultdict
from pathlib import Path

import torch
from benchmarks.throughput import (
    copy_bandwidth,
    make_checkpoint,
    matmul_flops,
    matmul_peak,
    ponder_llm,
    random_prompts,
    weight_bytes,
)


def kernel_table(prof, num_steps: int, top: int = 16) -> tuple[float, list[tuple[str, float, int]]]:
    """(GPU us per step, [(kernel, us per step, launches per step)]) from device events only."""
    per_kernel: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for row in prof.key_averages():  # CUDA activity only: the rows are kernels and copies
        device_us = getattr(row, "self_device_time_total", 0.0)
        if device_us > 0:
            entry = per_kernel[row.key[:90]]
            entry[0] += device_us
            entry[1] += row.count
    total = sum(us for us, _ in per_kernel.values()) / num_steps
    rows = sorted(per_kernel.items(), key=lambda item: -item[1][0])[:top]
    return total, [(name, us / num_steps, count // num_steps) for name, (us, count) in rows]


def print_table(title: str, total_us: float, rows: list[tuple[str, float, int]], ideal_us: float) -> None:
    print(f"== {title}: GPU {total_us:.0f} us/step, ideal {ideal_us:.0f} us ({ideal_us / total_us:.1%})")
    for name, us, count in rows:
        print(f"  {us:9.1f} us {us / total_us:6.1%}  x{count:<4d} {name}")


def profile_steps(engine, num_steps: int):
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(num_steps):
            engine.step()
        torch.cuda.synchronize()
    return prof


def decode_breakdown(args, model_dir: Path) -> None:
    from ponder import SamplingParams
    from ponder.models.hf_config import read_arch_config

    arch = read_arch_config(model_dir)
    llm = ponder_llm(
        model_dir,
        max_num_seqs=args.batch,
        max_num_batched_tokens=8192,
        max_model_len=args.context + 4 * args.steps + 64,
    )
    engine = llm.engine
    engine.async_scheduling = True
    params = SamplingParams(temperature=0.0, max_tokens=4 * args.steps, ignore_eos=True)
    for index, prompt in enumerate(random_prompts(args.batch, args.context, seed=1)):
        engine.add_request(f"d{index}", {"prompt_token_ids": prompt}, params)
    while engine.scheduler.waiting or any(
        s.num_computed_tokens < s.num_prompt_tokens for s in engine.scheduler.running
    ):
        engine.step()
    for _ in range(args.steps):
        engine.step()
    prof = profile_steps(engine, args.steps)
    kv_per_token = 2 * arch.num_hidden_layers * arch.num_key_value_heads * arch.head_dim * 2
    context_bytes = args.batch * (args.context + 2 * args.steps) * kv_per_token
    ideal_us = (weight_bytes(arch) + context_bytes) / copy_bandwidth() * 1e6
    total, rows = kernel_table(prof, args.steps)
    print_table(f"{args.shape} decode batch {args.batch} context {args.context}", total, rows, ideal_us)


def prefill_breakdown(args, model_dir: Path) -> None:
    from ponder import SamplingParams
    from ponder.models.hf_config import read_arch_config

    arch = read_arch_config(model_dir)
    length = args.prefill
    llm = ponder_llm(model_dir, max_num_seqs=4, max_num_batched_tokens=length, max_model_len=length + 16)
    engine = llm.engine
    params = SamplingParams(temperature=0.0, max_tokens=1, ignore_eos=True)
    prompt = random_prompts(1, length, seed=5)[0]
    profs = []
    for attempt in range(3):  # the first compiles kernels
        engine.reset_prefix_cache()
        engine.add_request(f"p{attempt}", {"prompt_token_ids": prompt}, params)
        torch.cuda.synchronize()
        if attempt == 0:
            while engine.has_unfinished_requests():
                engine.step()
            continue
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            while engine.has_unfinished_requests():
                engine.step()
            torch.cuda.synchronize()
        profs.append(prof)
    ideal_us = matmul_flops(arch, length) / matmul_peak() * 1e6
    total, rows = kernel_table(profs[-1], 1)
    print_table(f"{args.shape} prefill of {length} tokens", total, rows, ideal_us)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shape", default="qwen3-0.6b")
    parser.add_argument("--model-dir", type=Path, help="an existing checkpoint of --shape")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--context", type=int, default=640)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--prefill", type=int, default=0, help="profile one prompt of this length instead")
    args = parser.parse_args()
    model_dir = args.model_dir or Path(tempfile.mkdtemp()) / args.shape
    if not (model_dir / "config.json").is_file():
        make_checkpoint(args.shape, model_dir)
    if args.prefill:
        prefill_breakdown(args, model_dir)
    else:
        decode_breakdown(args, model_dir)


if __name__ == "__main__":
    main()
