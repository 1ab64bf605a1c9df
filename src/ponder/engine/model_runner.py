"""ModelRunner: a scheduled batch -> flat input tensors -> forward over the paged KV cache -> logits."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ponder.engine.scheduler import ScheduledBatch
from ponder.kernels.attention_metadata import AttentionMetadata
from ponder.layers.forward_context import forward_context


@dataclass
class ModelStepOutput:
    # One row per sequence whose computed tokens reach its token count this step: it samples.
    sample_logits: torch.Tensor
    sample_seq_indices: list[int]
    # Batch index -> logits of its prompt positions computed this step (for prompt_logprobs).
    prompt_logits: dict[int, torch.Tensor] = field(default_factory=dict)


class ModelRunner:
    def __init__(
        self,
        model: torch.nn.Module,
        *,
        num_layers: int,
        num_kv_heads: int,
        head_dim: int,
        num_blocks: int,
        block_size: int,
        dtype: torch.dtype,
        device: torch.device,
    ):
        self.model = model
        self.block_size = block_size
        self.device = device
        shape = (num_blocks, block_size, num_kv_heads, head_dim)
        self.kv_caches = [
            (
                torch.zeros(shape, dtype=dtype, device=device),
                torch.zeros(shape, dtype=dtype, device=device),
            )
            for _ in range(num_layers)
        ]
        model.bind_kv_cache(self.kv_caches)

    @torch.inference_mode()
    def execute(self, batch: ScheduledBatch) -> ModelStepOutput:
        if batch.block_copies:
            self._copy_blocks(batch.block_copies)
        inputs = self._prepare_inputs(batch)
        with forward_context(inputs.metadata):
            hidden = self.model(inputs.input_ids, inputs.positions)
        logits = self.model.compute_logits(hidden[inputs.logits_indices])
        num_sample = len(inputs.sample_seq_indices)
        prompt_logits = {
            batch_index: logits[start:end]
            for batch_index, (start, end) in inputs.prompt_logits_rows.items()
        }
        return ModelStepOutput(logits[:num_sample], inputs.sample_seq_indices, prompt_logits)

    def _copy_blocks(self, copies: list[tuple[int, int]]) -> None:
        src = torch.tensor([s for s, _ in copies], device=self.device)
        dst = torch.tensor([d for _, d in copies], device=self.device)
        for k_cache, v_cache in self.kv_caches:
            k_cache[dst] = k_cache[src]
            v_cache[dst] = v_cache[src]

    def _prepare_inputs(self, batch: ScheduledBatch) -> _StepInputs:
        block_size = self.block_size
        input_ids: list[int] = []
        positions: list[np.ndarray] = []
        slots: list[np.ndarray] = []
        query_lens: list[int] = []
        seq_lens: list[int] = []
        sample_positions: list[int] = []
        sample_seq_indices: list[int] = []
        prompt_positions: list[np.ndarray] = []
        prompt_logits_rows: dict[int, tuple[int, int]] = {}
        for batch_index, (seq, num_new) in enumerate(zip(batch.seqs, batch.num_new_tokens)):
            start, end = seq.num_computed_tokens, seq.num_computed_tokens + num_new
            flat_start = len(input_ids)
            input_ids.extend(seq.token_ids[start:end])
            seq_positions = np.arange(start, end)
            table = np.asarray(seq.block_table, dtype=np.int64)
            positions.append(seq_positions)
            slots.append(
                table[seq_positions // block_size] * block_size + seq_positions % block_size
            )
            query_lens.append(num_new)
            seq_lens.append(end)
            if end == seq.num_tokens:
                sample_positions.append(flat_start + num_new - 1)
                sample_seq_indices.append(batch_index)
            if _wants_prompt_logits(seq, start):
                # The logits at prompt position p score prompt token p + 1.
                last = min(end, seq.num_prompt_tokens - 1)
                prompt_positions.append(np.arange(flat_start, flat_start + last - start))
                prompt_logits_rows[batch_index] = (0, last - start)
        num_sample = len(sample_positions)
        offset = num_sample
        for batch_index, (_, length) in prompt_logits_rows.items():
            prompt_logits_rows[batch_index] = (offset, offset + length)
            offset += length
        logits_indices = np.concatenate(
            [np.asarray(sample_positions, dtype=np.int64), *prompt_positions]
        ).astype(np.int64)
        max_blocks = max(len(seq.block_table) for seq in batch.seqs)
        block_tables = np.zeros((len(batch.seqs), max_blocks), dtype=np.int32)
        for row, seq in enumerate(batch.seqs):
            block_tables[row, : len(seq.block_table)] = seq.block_table
        device = self.device
        metadata = AttentionMetadata(
            query_start_loc=torch.tensor(
                np.cumsum([0, *query_lens]), dtype=torch.int32, device=device
            ),
            seq_lens=torch.tensor(seq_lens, dtype=torch.int32, device=device),
            block_tables=torch.from_numpy(block_tables).to(device),
            slot_mapping=torch.from_numpy(np.concatenate(slots)).to(device),
            query_lens_cpu=query_lens,
            seq_lens_cpu=seq_lens,
            block_size=block_size,
        )
        return _StepInputs(
            input_ids=torch.tensor(input_ids, dtype=torch.long, device=device),
            positions=torch.from_numpy(np.concatenate(positions)).to(device),
            metadata=metadata,
            logits_indices=torch.from_numpy(logits_indices).to(device),
            sample_seq_indices=sample_seq_indices,
            prompt_logits_rows=prompt_logits_rows,
        )


@dataclass
class _StepInputs:
    input_ids: torch.Tensor
    positions: torch.Tensor
    metadata: AttentionMetadata
    logits_indices: torch.Tensor
    sample_seq_indices: list[int]
    prompt_logits_rows: dict[int, tuple[int, int]]


def _wants_prompt_logits(seq, start: int) -> bool:
    if seq.params.prompt_logprobs is None or seq.request.prompt_logprobs is None:
        return False
    # Only on the first pass over the prompt (not when recomputing after preemption).
    return start < seq.num_prompt_tokens - 1 and len(seq.request.prompt_logprobs) <= start + 1
