"""Offline decode throughput at tensor_parallel_size 1 vs N on the same machine, interleaved
(rounds alternate the order) so a noisy shared CPU hits both alike. Start-up is timed apart."""

from __future__ import annotations

import argparse
import statistics
import time

from ponder import LLM, SamplingParams


def one_run(model: str | None, tp_size: int, prompts: list[str], max_tokens: int) -> tuple[float, float]:
    started = time.perf_counter()
    with LLM(model, tensor_parallel_size=tp_size, max_model_len=512) as llm:
        ready = time.perf_counter()
        params = SamplingParams(temperature=0.0, max_tokens=max_tokens, ignore_eos=True)
        llm.generate(prompts[:1], SamplingParams(temperature=0.0, max_tokens=2))  # warm-up
        begin = time.perf_counter()
        outputs = llm.generate(prompts, params)
        elapsed = time.perf_counter() - begin
    tokens = sum(len(o.outputs[0].token_ids) for o in outputs)
    return tokens / elapsed, ready - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=None, help="HF checkpoint dir (default: built-in model)")
    parser.add_argument("--tp", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--num-prompts", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args()
    prompts = [
        f"Question {i}: what is {i} plus {2 * i}? Think step by step." for i in range(args.num_prompts)
    ]
    results: dict[int, list[tuple[float, float]]] = {1: [], args.tp: []}
    for round_index in range(args.rounds):
        order = [1, args.tp] if round_index % 2 == 0 else [args.tp, 1]
        for tp_size in order:
            speed, startup = one_run(args.model, tp_size, prompts, args.max_tokens)
            results[tp_size].append((speed, startup))
            print(
                f"round {round_index} TP={tp_size}: {speed:.1f} tokens/s, start-up {startup:.1f} s",
                flush=True,
            )
    for tp_size, runs in results.items():
        speeds = [speed for speed, _ in runs]
        print(
            f"TP={tp_size}: median {statistics.median(speeds):.1f} tokens/s "
            f"(runs {', '.join(f'{s:.1f}' for s in speeds)}), "
            f"start-up median {statistics.median(s for _, s in runs):.1f} s"
        )


if __name__ == "__main__":
    main()
