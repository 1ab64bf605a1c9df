"""A verify CUDA graph's padded inputs give the Triton attention the same result as the unpadded
step: sequences packed at the front, padded sequences with no tokens, tail rows nobody attends."""

from __future__ import annotations

import numpy as np
import torch

from ponder.engine.cuda_graphs import StepGraphs
from tests.kernels.paged_cases import make_paged_batch

SEQ_LENS, QUERY_LENS = [40, 17, 25], [5, 1, 3]  # a decode verifying 4 drafts, a plain decode, 2 drafts
TOKENS_PER_SEQ, BLOCK_SIZE = 5, 16


def _attend(query, batch, metadata):
    from ponder.kernels.triton_prefill_attention import prefill_attention

    return prefill_attention(
        query,
        batch.k_cache,
        batch.v_cache,
        metadata.block_tables,
        metadata.seq_lens,
        metadata.query_start_loc,
        metadata.max_query_len,
        0.125,
    )


def _host_arrays(metadata):
    num_tokens = sum(QUERY_LENS)
    positions = np.concatenate([np.arange(s - q, s) for s, q in zip(SEQ_LENS, QUERY_LENS)])
    return (
        np.arange(100, 100 + num_tokens, dtype=np.int64),
        positions.astype(np.int64),
        metadata.slot_mapping.cpu().numpy().astype(np.int64),
        metadata.query_start_loc.cpu().numpy().astype(np.int32),
        metadata.seq_lens.cpu().numpy().astype(np.int32),
        metadata.block_tables.cpu().numpy().astype(np.int32),
    )


def test_verify_graph_inputs_pack_the_step_and_pad_the_rest(device):
    batch = make_paged_batch(
        SEQ_LENS, QUERY_LENS, block_size=BLOCK_SIZE, num_kv_heads=2, group=2, head_dim=64, device=device
    )
    graphs = StepGraphs(
        lambda ids, positions: ids,  # never run: nothing is captured here
        max_batch_size=8,
        table_width=6,
        num_kv_heads=2,
        block_size=BLOCK_SIZE,
        max_seq_len=64,
        device=torch.device(device),
        tokens_per_seq=TOKENS_PER_SEQ,
    )
    ids, positions, slots, starts, lens, tables = _host_arrays(batch.metadata)
    num_tokens = len(ids)
    token_buffer = graphs.load_inputs(ids, positions, slots, starts, lens, tables)
    assert token_buffer.tolist() == ids.tolist()  # where pending tokens would be written

    bucket = graphs.bucket_for(len(SEQ_LENS))
    assert bucket == 4
    input_ids, position_buffer, static = graphs.static_inputs(bucket)
    rows = bucket * TOKENS_PER_SEQ
    assert input_ids.shape == position_buffer.shape == (rows,)
    assert input_ids[:num_tokens].tolist() == ids.tolist() and not input_ids[num_tokens:].any()
    assert position_buffer[:num_tokens].tolist() == positions.tolist()
    assert static.slot_mapping[num_tokens:].eq(-1).all()  # padding writes no KV
    assert static.query_start_loc.tolist() == [0, 5, 6, 9, 9]  # the padded sequence is empty
    assert static.seq_lens.tolist() == [*SEQ_LENS, 0]
    assert static.max_query_len == TOKENS_PER_SEQ

    # Tail rows hold garbage (in a graph: whatever the pool held); no real row may read them.
    padded_query = torch.full((rows, *batch.query.shape[1:]), 1e4, dtype=batch.query.dtype, device=device)
    padded_query[:num_tokens] = batch.query
    padded = _attend(padded_query, batch, static)
    expected = _attend(batch.query, batch, batch.metadata)
    torch.testing.assert_close(padded[:num_tokens], expected, rtol=1e-5, atol=1e-5)


def test_graphs_take_only_steps_that_fit():
    graphs = StepGraphs(
        lambda ids, positions: ids,
        max_batch_size=6,
        table_width=4,
        num_kv_heads=1,
        block_size=BLOCK_SIZE,
        max_seq_len=64,
        device=torch.device("cpu"),
        tokens_per_seq=3,
    )
    assert graphs.buckets == [1, 2, 4, 6]
    assert graphs.fits(6, [3, 1, 2])
    assert not graphs.fits(7, [1] * 7)  # above the largest bucket
    assert not graphs.fits(2, [4, 1])  # a sequence brings more tokens than were captured
