"""CUDA graphs for decode steps: one captured forward per batch-size bucket, inputs padded to it.

A decode step launches a few hundred small kernels; replaying a graph removes the per-kernel
launch cost and the Python in between. Inputs live in static device buffers that every bucket's
graph reads; padded rows carry slot -1 (no KV write) and length 0 (no attention work).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import torch

from ponder.engine.transfers import HostUploader
from ponder.kernels.attention_metadata import AttentionMetadata
from ponder.kernels.dispatch import decode_num_splits
from ponder.layers.forward_context import forward_context

logger = logging.getLogger("ponder.engine")


def batch_size_buckets(max_batch_size: int) -> list[int]:
    """1, 2, 4, 8, 16, ... up to and including max_batch_size."""
    buckets, size = [], 1
    while size < max_batch_size:
        buckets.append(size)
        size *= 2
    return [*buckets, max_batch_size]


class DecodeGraphs:
    """Captured decode forwards (token ids + positions -> hidden states) per batch-size bucket."""

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
    ) -> None:
        self.model = model
        self.buckets = batch_size_buckets(max_batch_size)
        self.table_width = table_width
        self.num_kv_heads = num_kv_heads
        self.block_size = block_size
        self.max_seq_len = max_seq_len
        self.device = device
        largest = self.buckets[-1]
        # Bucket b reads the first 3b int64 entries [ids | positions | slots] and the first
        # b * (1 + width) int32 entries [seq_lens | block table rows]: one upload each.
        self._int64 = torch.zeros(3 * largest, dtype=torch.int64, device=device)
        self._int32 = torch.zeros(largest * (1 + table_width), dtype=torch.int32, device=device)
        self._query_start_loc = torch.arange(largest + 1, dtype=torch.int32, device=device)
        self._uploader64 = HostUploader(torch.int64, device)
        self._uploader32 = HostUploader(torch.int32, device)
        self._table_uploader = HostUploader(torch.int32, device)
        self._graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self._outputs: dict[int, torch.Tensor] = {}

    @property
    def max_batch_size(self) -> int:
        return self.buckets[-1]

    def bucket_for(self, batch_size: int) -> int:
        return next(b for b in self.buckets if b >= batch_size)

    @torch.inference_mode()
    def capture(self) -> None:
        start = time.perf_counter()
        memory_before = torch.cuda.mem_get_info(self.device)[0]
        pool = None
        # Largest first, so smaller graphs reuse the memory pool the largest one reserved.
        for bucket in reversed(self.buckets):
            input_ids, positions, metadata = self._static_inputs(bucket)
            self._int64[2 * bucket : 3 * bucket].fill_(-1)  # capture must not write the cache
            with forward_context(metadata):
                self.model(input_ids, positions)  # warm-up: compiles kernels outside the graph
            torch.cuda.synchronize(self.device)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=pool), forward_context(metadata):
                self._outputs[bucket] = self.model(input_ids, positions)
            pool = graph.pool()
            self._graphs[bucket] = graph
        torch.cuda.synchronize(self.device)
        used = memory_before - torch.cuda.mem_get_info(self.device)[0]
        logger.info(
            "captured %d decode CUDA graphs (batch sizes %s) in %.1f s, %.0f MiB",
            len(self.buckets),
            ",".join(map(str, self.buckets)),
            time.perf_counter() - start,
            used / 2**20,
        )

    def _static_inputs(self, bucket: int) -> tuple[torch.Tensor, torch.Tensor, AttentionMetadata]:
        width = self.table_width
        metadata = AttentionMetadata(
            query_start_loc=self._query_start_loc[: bucket + 1],
            seq_lens=self._int32[:bucket],
            block_tables=self._int32[bucket : bucket * (1 + width)].view(bucket, width),
            slot_mapping=self._int64[2 * bucket : 3 * bucket],
            query_lens_cpu=[1] * bucket,
            seq_lens_cpu=[1] * bucket,
            block_size=self.block_size,
            # Fixed at capture: the kernel derives each split's range from lengths on the device.
            num_kv_splits=decode_num_splits(bucket, self.num_kv_heads, self.max_seq_len, self.device),
        )
        return self._int64[:bucket], self._int64[bucket : 2 * bucket], metadata

    def load_inputs(
        self,
        input_ids: np.ndarray,
        positions: np.ndarray,
        slot_mapping: np.ndarray,
        seq_lens: np.ndarray,
        block_tables: np.ndarray,
    ) -> torch.Tensor:
        """Queue the copies of one decode step's inputs (n <= max_batch_size sequences) into the
        static buffers; returns the token-id buffer [n], where tokens still on the device go."""
        num_seqs, used_width = block_tables.shape
        bucket = self.bucket_for(num_seqs)
        pad = bucket - num_seqs
        self._uploader64.upload(
            [
                np.pad(input_ids, (0, pad)),
                np.pad(positions, (0, pad)),
                np.pad(slot_mapping, (0, pad), constant_values=-1),
            ],
            out=self._int64,
        )
        self._uploader32.upload([np.pad(seq_lens, (0, pad))], out=self._int32)
        # Only the used corner of the table travels: later columns and padded rows are never
        # read, since the kernel stops at each row's length (0 for padding).
        tables = self._table_uploader.upload([block_tables])
        table_view = self._int32[bucket : bucket * (1 + self.table_width)].view(bucket, -1)
        table_view[:num_seqs, :used_width].copy_(tables.view(num_seqs, used_width))
        return self._int64[:num_seqs]

    def replay(self, num_seqs: int) -> torch.Tensor:
        """Run the step whose inputs load_inputs queued -> hidden states [n, hidden]."""
        bucket = self.bucket_for(num_seqs)
        self._graphs[bucket].replay()
        return self._outputs[bucket][:num_seqs]
