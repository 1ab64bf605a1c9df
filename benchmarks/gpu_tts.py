"""Latency of self-consistency against one greedy thought at batch 1 (issue 23, part 3).

One problem at a time: `greedy` decodes one thought; `self_consistency:n=16` decodes 16 sampled
branches of the same prompt at once (the prompt's KV computed once and shared through the prefix
cache, the branches batched in every step). Rounds alternate greedy / SC so both feel the same
drift; the figure is the median wall time per problem and the ratio.

    python benchmarks/gpu_tts.py --model /tmp/ck8 --max-tokens 1024 --rounds 3   # GPU, 8B shape
    python benchmarks/gpu_tts.py --model /tmp/cktiny --max-tokens 32 --rounds 1 --dtype float32  # CPU smoke

With a random-init checkpoint (benchmarks/gpu_serving.py checkpoint) every thought runs to
max_tokens (its end-of-sequence logit row is zeroed), so both sides decode the same length.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from ponder import LLM, SamplingParams


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--max-tokens", type=int, default=1024)
    parser.add_argument("--prompt-len", type=int, default=128)
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    llm = LLM(args.model, dtype=args.dtype)
    rng = np.random.default_rng(0)
    vocab = llm.engine.arch.vocab_size
    greedy = SamplingParams(temperature=0.0, max_tokens=args.max_tokens, ignore_eos=True)
    sampled = SamplingParams(temperature=0.8, max_tokens=args.max_tokens, ignore_eos=True)
    spec = {"type": "self_consistency", "n": args.n}
    label = f"self_consistency n={args.n}"

    def prompt() -> dict:  # a fresh prompt per problem: no round reuses another's cached KV
        return {"prompt_token_ids": [int(t) for t in rng.integers(10, min(vocab, 151000), args.prompt_len)]}

    def timed(run) -> tuple[float, int]:
        start = time.perf_counter()
        tokens = run()
        return time.perf_counter() - start, tokens

    def run_greedy() -> int:
        return len(llm.generate([prompt()], greedy, use_tqdm=False)[0].outputs[0].token_ids)

    def run_sc() -> int:
        (result,) = llm.reason([prompt()], spec, sampled, chat=False, concurrency=1)
        return result.usage.reasoning_tokens + result.usage.answer_tokens

    timed(run_greedy), timed(run_sc)  # warm-up: graphs, kernels, allocator
    rows: dict[str, list[tuple[float, int]]] = {"greedy": [], label: []}
    for _ in range(args.rounds):
        rows["greedy"].append(timed(run_greedy))
        rows[label].append(timed(run_sc))
    base = statistics.median(s for s, _ in rows["greedy"])
    print("| strategy | tokens per problem | latency per problem s | vs greedy |")
    print("|---|---|---|---|")
    summary = {}
    for name, runs in rows.items():
        seconds = statistics.median(s for s, _ in runs)
        tokens = statistics.median(t for _, t in runs)
        summary[name] = {"seconds": seconds, "tokens": tokens, "ratio": seconds / base, "runs": runs}
        print(f"| {name} | {tokens:,.0f} | {seconds:.3f} | {seconds / base:.2f}x |")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu_tts.json").write_text(json.dumps(summary, indent=1))
    llm.shutdown()


if __name__ == "__main__":
    main()
