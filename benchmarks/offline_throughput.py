"""Offline throughput: ponder LLM.generate vs transformers.generate on the same checkpoint, same run.

Usage:
    python benchmarks/offline_throughput.py [--model DIR] [--num-prompts 32] [--input-len 64]
        [--output-len 64] [--dtype float32]
Without --model, a random-init Qwen3 checkpoint (hidden 256, 4 layers) is written to a temp dir.
Every request generates exactly --output-len tokens (eos ignored) on both sides.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch


def make_random_checkpoint(path: Path) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.fixtures.checkpoints import make_checkpoint

    return make_checkpoint(
        path,
        "qwen3",
        num_layers=4,
        hidden_size=256,
        num_heads=8,
        num_kv_heads=4,
        head_dim=32,
        intermediate_size=768,
        vocab_size=2048,
        max_position_embeddings=4096,
    )


def random_prompts(num: int, length: int, vocab: int, seed: int) -> list[list[int]]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(10, vocab - 1, (num, length), generator=generator).tolist()


def run_ponder(model_dir: str, prompts, output_len: int, dtype: str) -> float:
    from ponder import LLM, SamplingParams

    llm = LLM(model_dir, dtype=dtype, max_num_seqs=len(prompts), max_num_batched_tokens=4096)
    params = SamplingParams(temperature=0, max_tokens=output_len, ignore_eos=True)
    llm.generate([{"prompt_token_ids": prompts[0]}], SamplingParams(max_tokens=2))  # warm-up
    start = time.perf_counter()
    outputs = llm.generate([{"prompt_token_ids": p} for p in prompts], params)
    elapsed = time.perf_counter() - start
    assert all(len(o.outputs[0].token_ids) == output_len for o in outputs)
    return elapsed


def run_transformers(model_dir: str, prompts, output_len: int, dtype: str) -> float:
    from transformers import AutoModelForCausalLM

    torch_dtype = getattr(torch, dtype)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch_dtype).eval()
    input_ids = torch.tensor(prompts)  # equal lengths: no padding needed
    kwargs = dict(do_sample=False, eos_token_id=None, pad_token_id=0)
    mask = torch.ones_like(input_ids)
    with torch.no_grad():
        model.generate(input_ids[:1], attention_mask=mask[:1], max_new_tokens=2, **kwargs)  # warm-up
        start = time.perf_counter()
        out = model.generate(input_ids, attention_mask=mask, max_new_tokens=output_len, **kwargs)
        elapsed = time.perf_counter() - start
    assert out.shape[1] == input_ids.shape[1] + output_len
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None)
    parser.add_argument("--num-prompts", type=int, default=32)
    parser.add_argument("--input-len", type=int, default=64)
    parser.add_argument("--output-len", type=int, default=64)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model or str(make_random_checkpoint(Path(tmp) / "model"))
        vocab = json.loads((Path(model_dir) / "config.json").read_text())["vocab_size"]
        prompts = random_prompts(args.num_prompts, args.input_len, vocab, args.seed)
        total_out = args.num_prompts * args.output_len
        results = {}
        for name, run in (
            ("transformers.generate", run_transformers),
            ("ponder LLM.generate", run_ponder),
        ):
            elapsed = run(model_dir, prompts, args.output_len, args.dtype)
            results[name] = total_out / elapsed
            print(f"{name:24s} {elapsed:7.2f} s  {results[name]:8.1f} output tok/s", flush=True)
    ratio = results["ponder LLM.generate"] / results["transformers.generate"]
    print(
        f"\nponder / transformers: {ratio:.2f}x  ({args.num_prompts} prompts x {args.input_len} in "
        f"x {args.output_len} out, {args.dtype}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()})"
    )


if __name__ == "__main__":
    main()
