"""Torch paged attention and KV store: the CPU path, and the ground truth the Triton kernels must
match."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ponder.kernels.attention_metadata import AttentionMetadata

# Gathered context per decode chunk. 4-16 MiB ran fastest on a 32 MiB-L3 EPYC (one and two
# threads), 32 MB already 2-3x slower: a chunk's keys and values should stay in cache while used.
DECODE_CHUNK_BYTES = 8 << 20
# Sequences with at most this many new tokens (a decode and its speculative drafts) are attended
# together: every context gathered once, padded, one masked batched matmul per KV head. Longer
# chunks (prefill) go through SDPA one sequence at a time.
SHORT_QUERY_MAX = 9


def store_kv(
    key: torch.Tensor,
    value: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    slot_mapping: torch.Tensor,
) -> None:
    """Write each new token's key/value [T, Hkv, D] into its cache slot; slot -1 is skipped.

    Caches are [num_blocks, block_size, Hkv, D]; slot = block_id * block_size + offset.
    """
    flat_k = k_cache.view(-1, *k_cache.shape[2:])
    flat_v = v_cache.view(-1, *v_cache.shape[2:])
    slots = slot_mapping.to(torch.long)
    keep = slots >= 0
    # Padding tokens (e.g. CUDA-graph filler) carry slot -1 and must not touch the cache.
    if not bool(keep.all()):
        slots, key, value = slots[keep], key[keep], value[keep]
    flat_k.index_copy_(0, slots, key.to(flat_k.dtype))
    flat_v.index_copy_(0, slots, value.to(flat_v.dtype))


def paged_attention(
    query: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    metadata: AttentionMetadata,
    scale: float,
) -> torch.Tensor:
    """Causal attention of each sequence's new tokens over its whole paged context.

    query: [T, Hq, D] in flat batch order, T = sum of query lengths; returns [T, Hq, D] in the
    query's dtype. Hq must be a multiple of the cache's Hkv (GQA/MQA). Computes in float32.
    """
    num_kv_heads = k_cache.shape[2]
    if query.shape[1] % num_kv_heads != 0:
        raise ValueError(f"query heads ({query.shape[1]}) must be a multiple of KV heads ({num_kv_heads})")
    query_lens = metadata.query_lens_cpu
    decode_seqs = [i for i, q_len in enumerate(query_lens) if q_len == 1]
    if decode_seqs and len(decode_seqs) == metadata.num_seqs:
        return _decode_attention(query, k_cache, v_cache, metadata, scale, None).to(query.dtype)
    short_seqs = [i for i, q_len in enumerate(query_lens) if q_len <= SHORT_QUERY_MAX]
    if len(short_seqs) == metadata.num_seqs:  # decodes verifying drafts: no per-sequence loop
        return _short_query_attention(query, k_cache, v_cache, metadata, scale, None).to(query.dtype)

    output = torch.empty_like(query)
    query_starts = _query_starts(metadata)
    if short_seqs:
        # Decodes (and drafts) of a mixed batch still go through one batched gather, not the loop.
        only_decodes = len(short_seqs) == len(decode_seqs)
        token_index = torch.tensor(
            [query_starts[i] + j for i in short_seqs for j in range(query_lens[i])], device=query.device
        )
        attend = _decode_attention if only_decodes else _short_query_attention
        output[token_index] = attend(query[token_index], k_cache, v_cache, metadata, scale, short_seqs).to(
            query.dtype
        )
    for i, q_len in enumerate(query_lens):
        if q_len > SHORT_QUERY_MAX:
            start = query_starts[i]
            output[start : start + q_len] = _prefill_attention(
                query[start : start + q_len], k_cache, v_cache, metadata, scale, i
            ).to(query.dtype)
    return output


def _query_starts(metadata: AttentionMetadata) -> list[int]:
    starts = [0]
    for q_len in metadata.query_lens_cpu:
        starts.append(starts[-1] + q_len)
    return starts


def _gather_context(cache: torch.Tensor, block_tables: torch.Tensor, num_blocks: int) -> torch.Tensor:
    """[S, >=num_blocks] block ids -> token-major float32 context [S, num_blocks * bs, Hkv, D]."""
    num_seqs = block_tables.shape[0]
    _, block_size, num_kv_heads, head_dim = cache.shape
    block_ids = block_tables[:, :num_blocks].reshape(-1).to(torch.long)
    blocks = cache.index_select(0, block_ids)
    return blocks.view(num_seqs, num_blocks * block_size, num_kv_heads, head_dim).float()


def _decode_attention(
    query: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    metadata: AttentionMetadata,
    scale: float,
    seqs: list[int] | None,
) -> torch.Tensor:
    """One query token per sequence (query row r belongs to sequence seqs[r]; None = all).

    Once the padded batch exceeds DECODE_CHUNK_BYTES, sequences are grouped by context length,
    within a factor of two of each other, each group padded to its own longest, and a group is
    cut into chunks whose gathered keys and values fit (`_decode_chunks`). Padding a batch of
    young branches beside long thoughts and their probes to the longest of all gathered mostly
    padding, and one gather of every context overflowed the CPU's cache (BENCHMARKS.md, "CPU
    decode attention": 2-7x faster).
    """
    seq_ids = list(range(metadata.num_seqs)) if seqs is None else seqs
    lengths = metadata.seq_lens_cpu
    chunks = _decode_chunks([lengths[seq] for seq in seq_ids], metadata.block_size, k_cache)
    if seqs is None and len(chunks) == 1:
        return _padded_decode_attention(
            query, k_cache, v_cache, metadata.block_tables, metadata.seq_lens, metadata.max_seq_len, scale
        )
    out = torch.empty(query.shape, dtype=torch.float32, device=query.device)
    for rows in chunks:
        members = [seq_ids[row] for row in rows]
        seq_index = torch.tensor(members, device=metadata.block_tables.device)
        row_index = torch.tensor(rows, device=query.device)
        out[row_index] = _padded_decode_attention(
            query[row_index],
            k_cache,
            v_cache,
            metadata.block_tables[seq_index],
            metadata.seq_lens[seq_index],
            max(lengths[seq] for seq in members),
            scale,
        )
    return out


def _decode_chunks(lengths: list[int], block_size: int, k_cache: torch.Tensor) -> list[list[int]]:
    """Rows to compute together. All of them while their padded keys and values fit
    DECODE_CHUNK_BYTES (splitting would only add calls: with 2 threads, 16 branches of one prompt
    ran 7% slower in two); else length groups cut into chunks that fit."""
    bytes_per_token = 2 * k_cache.shape[2] * k_cache.shape[3] * 4  # K and V of one position, fp32
    if len(lengths) * max(lengths) * bytes_per_token <= DECODE_CHUNK_BYTES:
        return [list(range(len(lengths)))]
    groups: dict[int, list[int]] = {}
    for row, length in enumerate(lengths):
        groups.setdefault(((length - 1) // block_size).bit_length(), []).append(row)
    chunks = []
    for rows in groups.values():
        per_chunk = max(1, DECODE_CHUNK_BYTES // (bytes_per_token * max(lengths[row] for row in rows)))
        chunks += [rows[start : start + per_chunk] for start in range(0, len(rows), per_chunk)]
    return chunks


def _padded_decode_attention(
    query: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    block_tables: torch.Tensor,
    seq_lens: torch.Tensor,
    max_len: int,
    scale: float,
) -> torch.Tensor:
    """Pad every context to `max_len`, mask, batched matmuls."""
    num_blocks = -(-max_len // k_cache.shape[1])
    keys = _gather_context(k_cache, block_tables, num_blocks)  # [S, L, Hkv, D]
    values = _gather_context(v_cache, block_tables, num_blocks)
    num_seqs, context_len, num_kv_heads, head_dim = keys.shape
    group = query.shape[1] // num_kv_heads
    q = query.float().view(num_seqs, num_kv_heads, group, head_dim)
    positions = torch.arange(context_len, device=query.device)
    padding = positions[None, :] >= seq_lens.to(query.device)[:, None]  # [S, L]
    out = torch.empty_like(q)
    for head in range(num_kv_heads):
        # One KV head's [S, L, D] slice is a strided view that batched GEMM reads in place; a
        # head-major permute of the whole context would copy it every step, which cost as much
        # as the GEMMs themselves for 16 branches on a CPU.
        scores = torch.bmm(q[:, head], keys[:, :, head].transpose(1, 2)) * scale  # [S, G, L]
        scores.masked_fill_(padding[:, None, :], float("-inf"))
        out[:, head] = torch.bmm(torch.softmax(scores, dim=-1), values[:, :, head])
    return out.reshape(num_seqs, num_kv_heads * group, head_dim)


def _prefill_attention(
    query: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    metadata: AttentionMetadata,
    scale: float,
    seq: int,
) -> torch.Tensor:
    """A chunk of q_len > 1 new tokens of sequence `seq`, attending over its cached prefix too."""
    q_len, seq_len = query.shape[0], metadata.seq_lens_cpu[seq]
    num_blocks = -(-seq_len // metadata.block_size)
    table = metadata.block_tables[seq : seq + 1]
    keys = _gather_context(k_cache, table, num_blocks)[0, :seq_len].transpose(0, 1)  # [Hkv, L, D]
    values = _gather_context(v_cache, table, num_blocks)[0, :seq_len].transpose(0, 1)
    num_kv_heads, _, head_dim = keys.shape
    group = query.shape[1] // num_kv_heads
    # The G query heads sharing a KV head are stacked as G * q_len rows of one SDPA batch entry,
    # so GQA needs no copy of K/V per query head.
    q = query.float().view(q_len, num_kv_heads, group, head_dim).permute(1, 2, 0, 3)
    q = q.reshape(num_kv_heads, group * q_len, head_dim)
    query_positions = torch.arange(seq_len - q_len, seq_len, device=query.device)
    key_positions = torch.arange(seq_len, device=query.device)
    causal = key_positions[None, :] <= query_positions[:, None]  # [q_len, seq_len]
    out = F.scaled_dot_product_attention(q, keys, values, attn_mask=causal.repeat(group, 1), scale=scale)
    out = out.view(num_kv_heads, group, q_len, head_dim).permute(2, 0, 1, 3)
    return out.reshape(q_len, num_kv_heads * group, head_dim)


def _short_query_attention(
    query: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    metadata: AttentionMetadata,
    scale: float,
    seqs: list[int] | None,
) -> torch.Tensor:
    """Sequences of 1..SHORT_QUERY_MAX new tokens each (query holds their tokens in order;
    None = all of the batch's sequences): each padded to the longest query and context of its
    chunk (the decode path's chunks, so gathered KV stays cache-sized), causal mask, batched
    matmuls. A verify step of K drafts costs one gather per layer, not one per sequence."""
    seq_ids = list(range(metadata.num_seqs)) if seqs is None else seqs
    lengths = metadata.seq_lens_cpu
    query_lens = metadata.query_lens_cpu
    starts = [0]
    for seq in seq_ids:
        starts.append(starts[-1] + query_lens[seq])
    chunks = _decode_chunks([lengths[seq] for seq in seq_ids], metadata.block_size, k_cache)
    if len(chunks) == 1:
        return _padded_short_attention(
            query, k_cache, v_cache, metadata.block_tables, seq_ids, lengths, query_lens, scale
        )
    out = torch.empty(query.shape, dtype=torch.float32, device=query.device)
    for rows in chunks:
        members = [seq_ids[row] for row in rows]
        tokens = torch.tensor(
            [t for row in rows for t in range(starts[row], starts[row + 1])], device=query.device
        )
        out[tokens] = _padded_short_attention(
            query[tokens], k_cache, v_cache, metadata.block_tables, members, lengths, query_lens, scale
        )
    return out


def _padded_short_attention(
    query: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    block_tables: torch.Tensor,
    seqs: list[int],
    seq_lens: list[int],
    query_lens: list[int],
    scale: float,
) -> torch.Tensor:
    """query [sum of seqs' query lens, Hq, D] -> float32 [same]: every query padded to the
    longest (Q), every context to the longest (L)."""
    q_lens = [query_lens[seq] for seq in seqs]
    lens = [seq_lens[seq] for seq in seqs]
    num_seqs, q_max, max_len = len(seqs), max(q_lens), max(lens)
    device = query.device
    num_blocks = -(-max_len // k_cache.shape[1])
    table = (
        block_tables
        if len(seqs) == block_tables.shape[0]
        else block_tables[torch.tensor(seqs, device=block_tables.device)]
    )
    keys = _gather_context(k_cache, table, num_blocks)  # [S, L, Hkv, D]
    values = _gather_context(v_cache, table, num_blocks)
    _, context_len, num_kv_heads, head_dim = keys.shape
    group = query.shape[1] // num_kv_heads
    # Token r of sequence s sits at padded row s * Q + r.
    same_length = all(q_len == q_max for q_len in q_lens)
    if same_length:
        padded = query.float()
    else:
        rows = torch.tensor(
            [s * q_max + r for s, q_len in enumerate(q_lens) for r in range(q_len)], device=device
        )
        padded = query.new_zeros((num_seqs * q_max, *query.shape[1:]), dtype=torch.float32)
        padded[rows] = query.float()
    q = padded.view(num_seqs, q_max, num_kv_heads, group, head_dim)
    # Query row r of sequence s (position len - q_len + r) sees keys up to that position; padded
    # rows (r >= q_len) repeat the last real row's mask, so none is all -inf.
    last_key = torch.tensor(
        [[length - q_len + min(r, q_len - 1) for r in range(q_max)] for length, q_len in zip(lens, q_lens)],
        device=device,
    )
    hidden = torch.arange(context_len, device=device)[None, None, :] > last_key[:, :, None]  # [S, Q, L]
    hidden = (
        hidden[:, :, None, :]
        .expand(num_seqs, q_max, group, context_len)
        .reshape(num_seqs, q_max * group, context_len)
    )
    out = torch.empty_like(q)
    for head in range(num_kv_heads):
        q_head = q[:, :, head].reshape(num_seqs, q_max * group, head_dim)
        scores = torch.bmm(q_head, keys[:, :, head].transpose(1, 2)) * scale  # [S, Q*G, L]
        scores.masked_fill_(hidden, float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        out[:, :, head] = torch.bmm(probs, values[:, :, head]).view(num_seqs, q_max, group, head_dim)
    out = out.view(num_seqs * q_max, num_kv_heads * group, head_dim)
    return out if same_length else out[rows]
