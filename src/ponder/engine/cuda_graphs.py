"""CUDA graphs for short-query steps: one captured forward per batch-size bucket, inputs padded.

A decode step launches a few hundred small kernels; replaying a graph removes the per-kernel
launch cost and the Python in between. Inputs live in static device buffers that every bucket's
graph reads; padded rows carry slot -1 (no KV write) and length 0 (no attention work).

A graph set is captured for a fixed number of query tokens per sequence, tokens_per_seq: 1 for
plain decode, 1 + K for steps that verify up to K speculative drafts. Such a graph takes any
batch whose sequences each bring at most that many new tokens: they are packed at the front of
the bucket's bucket * tokens_per_seq rows (the layout of AttentionMetadata), the rest is padding
that no sequence attends to and whose rows nobody reads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from ponder.engine.transfers import HostUploader
from ponder.kernels.attention_metadata import AttentionMetadata
from ponder.kernels.dispatch import decode_num_splits
from ponder.layers.forward_context import forward_context

if TYPE_CHECKING:
    from torch.cuda import _POOL_HANDLE

logger = logging.getLogger("ponder.engine")


def batch_size_buckets(max_batch_size: int) -> list[int]:
    """1, 2, 4, 8, 16, ... up to and including max_batch_size."""
    buckets, size = [], 1
    while size < max_batch_size:
        buckets.append(size)
        size *= 2
    return [*buckets, max_batch_size]


class StepGraphs:
    """Captured forwards (token ids + positions -> hidden states) per batch-size bucket."""

    def __init__(
        self,
        model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],  # (input_ids, positions) -> hidden
        *,
        max_batch_size: int,
        table_width: int,
        num_kv_heads: int,
        block_size: int,
        max_seq_len: int,
        device: torch.device,
        tokens_per_seq: int = 1,
    ) -> None:
        self.model = model
        self.tokens_per_seq = tokens_per_seq
        self.buckets = batch_size_buckets(max_batch_size)
        self.table_width = table_width
        self.num_kv_heads = num_kv_heads
        self.block_size = block_size
        self.max_seq_len = max_seq_len
        self.device = device
        largest = self.buckets[-1]
        # Bucket b reads the first 3bq int64 entries [ids | positions | slots] (q tokens per
        # sequence) and the first 1 + b * (2 + width) int32 entries [query_start_loc | seq_lens
        # | block table rows]: one upload each.
        self._int64 = torch.zeros(3 * largest * tokens_per_seq, dtype=torch.int64, device=device)
        self._int32 = torch.zeros(1 + largest * (2 + table_width), dtype=torch.int32, device=device)
        self._uploader64 = HostUploader(torch.int64, device)
        self._uploader32 = HostUploader(torch.int32, device)
        self._table_uploader = HostUploader(torch.int32, device)
        self._graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self._outputs: dict[int, torch.Tensor] = {}
        self.pool: _POOL_HANDLE | None = None  # the graphs' memory pool, shareable with another set
        self.replays = 0

    def sibling(self, max_batch_size: int, tokens_per_seq: int) -> StepGraphs:
        """An uncaptured set for the same model and KV shape with other batch / token sizes."""
        return StepGraphs(
            self.model,
            max_batch_size=max_batch_size,
            table_width=self.table_width,
            num_kv_heads=self.num_kv_heads,
            block_size=self.block_size,
            max_seq_len=self.max_seq_len,
            device=self.device,
            tokens_per_seq=tokens_per_seq,
        )

    @property
    def max_batch_size(self) -> int:
        return self.buckets[-1]

    def bucket_for(self, batch_size: int) -> int:
        return next(b for b in self.buckets if b >= batch_size)

    def fits(self, num_seqs: int, query_lens: list[int]) -> bool:
        """Whether a step of these sequences can replay one of the graphs."""
        return num_seqs <= self.buckets[-1] and max(query_lens) <= self.tokens_per_seq

    @torch.inference_mode()
    def capture(self, pool: _POOL_HANDLE | None = None) -> None:
        start = time.perf_counter()
        memory_before = torch.cuda.mem_get_info(self.device)[0]
        # Capture must neither attend (every length 0) nor write the cache (slots -1). Largest
        # bucket first, so smaller graphs reuse the memory pool the largest one reserved; a
        # smaller bucket's ids and positions lie below every larger bucket's slots.
        self._int64.zero_()
        self._int32.zero_()
        for bucket in reversed(self.buckets):
            input_ids, positions, metadata = self.static_inputs(bucket)
            tokens = bucket * self.tokens_per_seq
            self._int64[2 * tokens : 3 * tokens].fill_(-1)
            with forward_context(metadata):
                self.model(input_ids, positions)  # warm-up: compiles kernels outside the graph
            torch.cuda.synchronize(self.device)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=pool), forward_context(metadata):
                self._outputs[bucket] = self.model(input_ids, positions)
            pool = graph.pool()
            self._graphs[bucket] = graph
        self.pool = pool
        torch.cuda.synchronize(self.device)
        used = memory_before - torch.cuda.mem_get_info(self.device)[0]
        logger.info(
            "captured %d CUDA graphs of %d token(s) per sequence (batch sizes %s) in %.1f s, %.0f MiB",
            len(self.buckets),
            self.tokens_per_seq,
            ",".join(map(str, self.buckets)),
            time.perf_counter() - start,
            used / 2**20,
        )

    def static_inputs(self, bucket: int) -> tuple[torch.Tensor, torch.Tensor, AttentionMetadata]:
        width, tokens = self.table_width, bucket * self.tokens_per_seq
        metadata = AttentionMetadata(
            query_start_loc=self._int32[: bucket + 1],
            seq_lens=self._int32[bucket + 1 : 2 * bucket + 1],
            block_tables=self._int32[2 * bucket + 1 : 1 + bucket * (2 + width)].view(bucket, width),
            slot_mapping=self._int64[2 * tokens : 3 * tokens],
            # Host copies as the kernels' launch parameters see them: the grid spans
            # tokens_per_seq queries per sequence; lengths are read on the device.
            query_lens_cpu=[self.tokens_per_seq] * bucket,
            seq_lens_cpu=[1] * bucket,
            block_size=self.block_size,
            # Fixed at capture: the kernel derives each split's range from lengths on the device.
            num_kv_splits=(
                decode_num_splits(bucket, self.num_kv_heads, self.max_seq_len, self.device)
                if self.device.type == "cuda"
                else None  # a CPU instance only packs inputs (tests): nothing is captured
            ),
        )
        return self._int64[:tokens], self._int64[tokens : 2 * tokens], metadata

    def load_inputs(
        self,
        input_ids: np.ndarray,
        positions: np.ndarray,
        slot_mapping: np.ndarray,
        query_start_loc: np.ndarray,
        seq_lens: np.ndarray,
        block_tables: np.ndarray,
    ) -> torch.Tensor:
        """Queue the copies of one step's inputs (n <= max_batch_size sequences, each at most
        tokens_per_seq new tokens) into the static buffers; returns the token-id buffer [T],
        where tokens still on the device go."""
        num_seqs, used_width = block_tables.shape
        bucket = self.bucket_for(num_seqs)
        num_tokens = len(input_ids)
        pad_tokens, pad_seqs = bucket * self.tokens_per_seq - num_tokens, bucket - num_seqs
        self._uploader64.upload(
            [
                np.pad(input_ids, (0, pad_tokens)),
                np.pad(positions, (0, pad_tokens)),
                np.pad(slot_mapping, (0, pad_tokens), constant_values=-1),
            ],
            out=self._int64,
        )
        # Padded sequences start where the last one ends: no query tokens, no context.
        self._uploader32.upload(
            [np.pad(query_start_loc, (0, pad_seqs), mode="edge"), np.pad(seq_lens, (0, pad_seqs))],
            out=self._int32,
        )
        # Only the used corner of the table travels: later columns and padded rows are never
        # read, since the kernel stops at each row's length (0 for padding).
        tables = self._table_uploader.upload([block_tables])
        first = 2 * bucket + 1
        table_view = self._int32[first : first + bucket * self.table_width].view(bucket, -1)
        table_view[:num_seqs, :used_width].copy_(tables.view(num_seqs, used_width))
        return self._int64[:num_tokens]

    def replay(self, num_seqs: int) -> torch.Tensor:
        """Run the step whose inputs load_inputs queued -> hidden states of the whole bucket,
        [bucket * tokens_per_seq, hidden]; the step's tokens are its first rows."""
        bucket = self.bucket_for(num_seqs)
        self._graphs[bucket].replay()
        self.replays += 1
        return self._outputs[bucket]
