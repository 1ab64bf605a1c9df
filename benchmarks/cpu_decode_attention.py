"""The torch decode attention (the CPU path): length groups in cache-sized chunks against one
padded gather of the whole batch (the path before), in the same process, taking turns.

One layer of the built-in model's shape (2 KV heads, 3 query heads each, head dim 64, blocks of
16); each case is a batch of decoding sequences with context lengths drawn uniformly from a
range (a mix of young branches, long thoughts and their probes, as strategies make). Prints one
JSON line per case: median ms of each path over --repeats, the speed-up, and the largest
difference between their outputs.

Usage (repo root):
    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/cpu_decode_attention.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import statistics
import time

import torch

from ponder.kernels.attention_metadata import AttentionMetadata

reference = importlib.import_module("ponder.kernels.paged_attention")  # the package shadows it

CASES = [
    (1, 100, 1600),
    (4, 100, 1600),
    (16, 100, 1600),
    (16, 700, 900),
    (48, 100, 1600),
    (96, 100, 1600),
    (64, 50, 400),
    (128, 50, 400),
]  # (sequences, shortest, longest context)
BLOCK, KV_HEADS, GROUP, HEAD_DIM = 16, 2, 3, 64


def make_batch(num_seqs: int, shortest: int, longest: int, seed: int = 0):
    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    lengths = [rng.randint(shortest, longest) for _ in range(num_seqs)]
    blocks = [-(-length // BLOCK) for length in lengths]
    shape = (sum(blocks) + 1, BLOCK, KV_HEADS, HEAD_DIM)
    k_cache, v_cache = torch.randn(shape, generator=generator), torch.randn(shape, generator=generator)
    tables = torch.zeros(num_seqs, max(blocks), dtype=torch.int32)
    start = 1
    for row, count in enumerate(blocks):
        tables[row, :count] = torch.arange(start, start + count)
        start += count
    metadata = AttentionMetadata(
        query_start_loc=torch.arange(num_seqs + 1, dtype=torch.int32),
        seq_lens=torch.tensor(lengths, dtype=torch.int32),
        block_tables=tables,
        slot_mapping=torch.zeros(num_seqs, dtype=torch.int64),
        query_lens_cpu=[1] * num_seqs,
        seq_lens_cpu=lengths,
        block_size=BLOCK,
    )
    query = torch.randn(num_seqs, KV_HEADS * GROUP, HEAD_DIM, generator=generator)
    return query, k_cache, v_cache, metadata


def median_ms(run, repeats: int) -> float:
    run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def compare(num_seqs: int, shortest: int, longest: int, repeats: int) -> dict:
    query, k_cache, v_cache, metadata = make_batch(num_seqs, shortest, longest)
    scale = HEAD_DIM**-0.5

    def grouped() -> torch.Tensor:
        return reference.paged_attention(query, k_cache, v_cache, metadata, scale)

    def padded() -> torch.Tensor:  # one gather of every context, padded to the longest (before)
        tables, lengths = metadata.block_tables, metadata.seq_lens
        return reference._padded_decode_attention(
            query, k_cache, v_cache, tables, lengths, metadata.max_seq_len, scale
        )

    before, after = median_ms(padded, repeats), median_ms(grouped, repeats)
    return {
        "sequences": num_seqs,
        "context": [shortest, longest],
        "padded_ms": round(before, 2),
        "grouped_ms": round(after, 2),
        "speedup": round(before / after, 2),
        "max_abs_diff": (grouped() - padded()).abs().max().item(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    for case in CASES:
        print(json.dumps(compare(*case, args.repeats)), flush=True)


if __name__ == "__main__":
    main()
