"""Reference paged attention and store_kv against a naive dense causal attention."""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ponder.kernels import paged_attention, store_kv
from tests.fixtures.paged_batch import build_attention_metadata

# the module, which the package's `paged_attention` function shadows
reference_module = importlib.import_module("ponder.kernels.paged_attention")

HEAD_DIM = 8


@dataclass
class PagedCase:
    query: torch.Tensor  # [T, Hq, D] flat
    k_cache: torch.Tensor
    v_cache: torch.Tensor
    keys: list[torch.Tensor]  # per sequence, whole context [seq_len, Hkv, D]
    values: list[torch.Tensor]
    seq_lens: list[int]
    query_lens: list[int]
    block_tables: list[list[int]]
    block_size: int


def make_case(
    seq_lens: list[int],
    query_lens: list[int],
    block_size: int,
    num_kv_heads: int,
    group: int,
    seed: int = 0,
) -> PagedCase:
    """Random context KV written through store_kv into shuffled (non-contiguous) blocks."""
    gen = torch.Generator().manual_seed(seed)
    blocks_needed = [-(-n // block_size) for n in seq_lens]
    num_blocks = sum(blocks_needed) + 3
    shuffled = torch.randperm(num_blocks, generator=gen).tolist()
    block_tables, used = [], 0
    for count in blocks_needed:
        block_tables.append(shuffled[used : used + count])
        used += count
    shape = (num_blocks, block_size, num_kv_heads, HEAD_DIM)
    # Garbage everywhere, so reading a slot that was never written changes the result.
    k_cache = torch.randn(shape, generator=gen) * 100
    v_cache = torch.randn(shape, generator=gen) * 100
    keys = [torch.randn(n, num_kv_heads, HEAD_DIM, generator=gen) for n in seq_lens]
    values = [torch.randn(n, num_kv_heads, HEAD_DIM, generator=gen) for n in seq_lens]
    full = build_attention_metadata(block_tables, seq_lens, seq_lens, block_size)
    store_kv(torch.cat(keys), torch.cat(values), k_cache, v_cache, full.slot_mapping)
    query = torch.randn(sum(query_lens), num_kv_heads * group, HEAD_DIM, generator=gen)
    return PagedCase(query, k_cache, v_cache, keys, values, seq_lens, query_lens, block_tables, block_size)


def dense_reference(case: PagedCase, scale: float) -> torch.Tensor:
    outputs, start = [], 0
    for keys, values, seq_len, q_len in zip(
        case.keys, case.values, case.seq_lens, case.query_lens, strict=True
    ):
        q = case.query[start : start + q_len].double()
        start += q_len
        group = q.shape[1] // keys.shape[1]
        k = keys.double().repeat_interleave(group, dim=1)
        v = values.double().repeat_interleave(group, dim=1)
        scores = torch.einsum("qhd,khd->hqk", q, k) * scale
        query_positions = torch.arange(seq_len - q_len, seq_len)[:, None]
        future = torch.arange(seq_len)[None, :] > query_positions
        scores = scores.masked_fill(future, float("-inf"))
        outputs.append(torch.einsum("hqk,khd->qhd", scores.softmax(-1), v))
    return torch.cat(outputs)


def run_paged(case: PagedCase, scale: float) -> torch.Tensor:
    metadata = build_attention_metadata(case.block_tables, case.seq_lens, case.query_lens, case.block_size)
    return paged_attention(case.query, case.k_cache, case.v_cache, metadata, scale)


def batch_shapes(kind: str, bs: int) -> tuple[list[int], list[int]]:
    if kind == "decode":
        seq_lens = [1, bs - 1, bs, bs + 1, 2 * bs + 5]
        return seq_lens, [1] * len(seq_lens)
    if kind == "prefill":
        seq_lens = [2, bs - 1, bs, bs + 1, 3 * bs]
        return seq_lens, list(seq_lens)
    # mixed: decodes, a whole-prompt prefill and chunks over a cached prefix, interleaved
    pairs = [(bs + 1, 1), (bs - 1, bs - 1), (1, 1), (2 * bs + 3, 5), (bs, bs), (3 * bs, bs + 1)]
    return [s for s, _ in pairs], [q for _, q in pairs]


@pytest.mark.parametrize("kind", ["decode", "prefill", "mixed"])
@pytest.mark.parametrize("block_size", [16, 4])
@pytest.mark.parametrize("group", [1, 2, 4])
def test_paged_attention_matches_dense_causal_attention(kind, block_size, group):
    seq_lens, query_lens = batch_shapes(kind, block_size)
    case = make_case(seq_lens, query_lens, block_size, num_kv_heads=2, group=group)
    scale = HEAD_DIM**-0.5
    out = run_paged(case, scale)
    assert out.shape == case.query.shape and out.dtype == case.query.dtype
    torch.testing.assert_close(out.double(), dense_reference(case, scale), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["decode", "mixed"])
@pytest.mark.parametrize("chunk_bytes", [1, 4096, 1 << 30])
def test_decode_rows_in_length_groups_and_cache_sized_chunks_match_dense(kind, chunk_bytes, monkeypatch):
    # The CPU path groups decode rows by context length and cuts groups into chunks of at most
    # DECODE_CHUNK_BYTES of gathered context: one row per chunk, a few, or one for all.
    monkeypatch.setattr(reference_module, "DECODE_CHUNK_BYTES", chunk_bytes)
    seq_lens, query_lens = batch_shapes(kind, 4)
    seq_lens, query_lens = seq_lens * 3, query_lens * 3  # several rows per length group
    case = make_case(seq_lens, query_lens, 4, num_kv_heads=2, group=2, seed=7)
    out = run_paged(case, HEAD_DIM**-0.5)
    torch.testing.assert_close(out.double(), dense_reference(case, HEAD_DIM**-0.5), atol=1e-5, rtol=1e-5)


@settings(max_examples=25, deadline=None)
@given(
    shapes=st.lists(
        st.integers(1, 40).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, n))),
        min_size=1,
        max_size=5,
    ),
    block_size=st.sampled_from([1, 3, 4, 16]),
    num_kv_heads=st.sampled_from([1, 2]),
    group=st.sampled_from([1, 2, 4]),
    seed=st.integers(0, 2**16),
)
def test_paged_attention_random_batches(shapes, block_size, num_kv_heads, group, seed):
    seq_lens, query_lens = [s for s, _ in shapes], [q for _, q in shapes]
    case = make_case(seq_lens, query_lens, block_size, num_kv_heads, group, seed)
    out = run_paged(case, scale=0.3)
    torch.testing.assert_close(out.double(), dense_reference(case, 0.3), atol=1e-5, rtol=1e-5)


def test_paged_attention_keeps_low_precision_query_dtype():
    case = make_case([9, 5], [1, 5], block_size=4, num_kv_heads=2, group=2)
    case.query = case.query.to(torch.bfloat16)
    out = run_paged(case, scale=0.35)
    assert out.dtype == torch.bfloat16
    reference = dense_reference(case, 0.35)
    torch.testing.assert_close(out.double(), reference, atol=3e-2, rtol=3e-2)


def test_paged_attention_rejects_heads_not_multiple_of_kv_heads():
    case = make_case([4], [4], block_size=4, num_kv_heads=2, group=1)
    case.query = torch.randn(4, 3, HEAD_DIM)
    with pytest.raises(ValueError, match="multiple of KV heads"):
        run_paged(case, scale=1.0)


def test_store_kv_writes_each_token_to_its_slot_and_skips_minus_one():
    k_cache = torch.zeros(3, 4, 2, HEAD_DIM)
    v_cache = torch.zeros(3, 4, 2, HEAD_DIM)
    key = torch.randn(3, 2, HEAD_DIM)
    value = torch.randn(3, 2, HEAD_DIM)
    slot_mapping = torch.tensor([9, -1, 2], dtype=torch.int64)  # block 2 offset 1; block 0 offset 2
    store_kv(key, value, k_cache, v_cache, slot_mapping)
    assert torch.equal(k_cache[2, 1], key[0]) and torch.equal(v_cache[2, 1], value[0])
    assert torch.equal(k_cache[0, 2], key[2]) and torch.equal(v_cache[0, 2], value[2])
    written = torch.zeros(3, 4, dtype=torch.bool)
    written[2, 1] = written[0, 2] = True
    assert not k_cache[~written].any() and not v_cache[~written].any()


def test_store_kv_casts_to_cache_dtype():
    k_cache = torch.zeros(1, 2, 1, HEAD_DIM, dtype=torch.bfloat16)
    v_cache = torch.zeros(1, 2, 1, HEAD_DIM, dtype=torch.bfloat16)
    key = torch.randn(1, 1, HEAD_DIM)
    store_kv(key, key * 2, k_cache, v_cache, torch.tensor([1]))
    assert torch.equal(k_cache[0, 1], key[0].to(torch.bfloat16))
    assert torch.equal(v_cache[0, 1], (key[0] * 2).to(torch.bfloat16))


def test_the_cpu_decode_attention_benchmark_compares_both_paths():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "cpu_decode_attention.py"
    spec = importlib.util.spec_from_file_location("cpu_decode_attention", path)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    row = benchmark.compare(6, 10, 300, repeats=1)
    assert row["padded_ms"] > 0 and row["grouped_ms"] > 0 and row["max_abs_diff"] < 1e-5


@pytest.mark.parametrize(
    ("seq_lens", "query_lens"),
    [
        ([37], [5]),  # one sequence verifying 4 drafts
        ([7, 8, 9, 12, 23], [5, 5, 5, 5, 5]),  # contexts ending at, before and after a block edge
        ([3, 12, 7, 30, 9], [1, 3, 7, 9, 2]),  # queries of different lengths, a decode among them
        ([6, 40, 17], [6, 9, 9]),  # a query that is its whole context
    ],
)
@pytest.mark.parametrize("chunk_bytes", [1, 1 << 30])
def test_short_queries_of_several_sequences_match_dense(seq_lens, query_lens, chunk_bytes, monkeypatch):
    # Verify steps (a decode plus K drafts per sequence) take the batched short-query path: one
    # padded gather and masked matmul for all sequences, in one chunk or one chunk per sequence.
    monkeypatch.setattr(reference_module, "DECODE_CHUNK_BYTES", chunk_bytes)
    assert max(query_lens) <= reference_module.SHORT_QUERY_MAX
    case = make_case(seq_lens, query_lens, 4, num_kv_heads=2, group=3, seed=11)
    out = run_paged(case, HEAD_DIM**-0.5)
    torch.testing.assert_close(out.double(), dense_reference(case, HEAD_DIM**-0.5), atol=1e-5, rtol=1e-5)


def test_short_queries_beside_a_prefill_chunk_match_dense():
    # A mixed step: short queries go batched, the long prefill chunk through its own SDPA.
    seq_lens, query_lens = [9, 30, 14, 21], [5, 20, 1, 3]
    assert query_lens[1] > reference_module.SHORT_QUERY_MAX
    case = make_case(seq_lens, query_lens, 4, num_kv_heads=2, group=2, seed=5)
    out = run_paged(case, 0.4)
    torch.testing.assert_close(out.double(), dense_reference(case, 0.4), atol=1e-5, rtol=1e-5)


def test_short_query_path_agrees_with_the_per_sequence_path(monkeypatch):
    # The same verify batch through the batched path and through the per-sequence SDPA loop.
    case = make_case([13, 26, 8], [5, 5, 3], 4, num_kv_heads=2, group=2, seed=3)
    batched = run_paged(case, 0.3)
    monkeypatch.setattr(reference_module, "SHORT_QUERY_MAX", 0)
    looped = run_paged(case, 0.3)
    torch.testing.assert_close(batched, looped, atol=1e-5, rtol=1e-5)
