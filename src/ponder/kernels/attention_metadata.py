"""AttentionMetadata: the per-step description of a ragged, paged batch that attention kernels read."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class AttentionMetadata:
    """Flat batch layout: the new tokens of all sequences are concatenated, sequence by sequence.

    Sequence i contributes query_lens[i] new tokens at flat positions
    [query_start_loc[i], query_start_loc[i+1]); they sit at context positions
    [seq_lens[i] - query_lens[i], seq_lens[i]) and attend causally to the sequence's whole
    context (cached prefix + themselves), which lives in the paged KV cache after store_kv.
    KV cache layout per layer: [num_blocks, block_size, num_kv_heads, head_dim].
    """

    query_start_loc: torch.Tensor  # int32 [num_seqs + 1], on the model's device
    seq_lens: torch.Tensor  # int32 [num_seqs]: context length after this step (cached + new)
    block_tables: torch.Tensor  # int32 [num_seqs, max_blocks_per_seq], padded with 0
    slot_mapping: torch.Tensor  # int64 [num_tokens]: block_id * block_size + offset of each new token
    query_lens_cpu: list[int]  # host copies, so reference code needs no device sync
    seq_lens_cpu: list[int]
    block_size: int
    # Decode KV partitions; None: chosen from the batch. CUDA graphs fix it at capture time.
    num_kv_splits: int | None = None

    @property
    def num_seqs(self) -> int:
        return len(self.seq_lens_cpu)

    @property
    def max_query_len(self) -> int:
        return max(self.query_lens_cpu, default=0)

    @property
    def max_seq_len(self) -> int:
        return max(self.seq_lens_cpu, default=0)

    @property
    def is_decode_only(self) -> bool:
        return self.max_query_len == 1
