"""ModelRunner: a scheduled batch -> flat input tensors -> forward over the paged KV cache -> logits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from ponder.config import EngineConfig
from ponder.engine.cuda_graphs import StepGraphs
from ponder.engine.kv.layout import KVLayout
from ponder.engine.scheduler import ScheduledBatch
from ponder.engine.transfers import HostUploader, to_device
from ponder.kernels.attention_metadata import AttentionMetadata
from ponder.layers.forward_context import forward_context

# Stands in for a token still on the device until the device-side copy overwrites it.
PLACEHOLDER_TOKEN = 0


class CausalLM(Protocol):
    """What the engine calls on a model (models.DecoderForCausalLM). Typed here because the
    attributes of a plain torch.nn.Module read as `Tensor | Module` to a type checker."""

    def __call__(self, input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """input_ids, positions: int64 [T] -> hidden states [T, hidden_size]."""
        ...

    def compute_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden [N, hidden_size] -> float32 logits [N, vocab_size]."""
        ...

    def bind_kv_cache(self, kv_caches: Sequence[tuple[torch.Tensor | None, torch.Tensor | None]]) -> None:
        """One (k_cache, v_cache) per layer; (None, None) per layer unbinds them."""
        ...


@dataclass
class ModelStepOutput:
    # One row per sequence whose computed tokens reach its token count this step: it samples.
    sample_logits: torch.Tensor
    sample_seq_indices: list[int]
    # Batch index -> logits of its prompt positions computed this step (for prompt_logprobs).
    prompt_logits: dict[int, torch.Tensor] = field(default_factory=dict)
    # Speculative decoding: the logits after each draft token, the batch's sequences with drafts
    # in batch order, len(spec_token_ids) rows each (engine/spec/). None: no drafts.
    spec_logits: torch.Tensor | None = None


@dataclass
class PendingInputs:
    """Input tokens of a step that exist only on the device (asynchronous scheduling): sampled
    by the step before, still on their way to the host. For each listed batch row, the last
    token scheduled is one of them; the host arrays carry a placeholder there."""

    sampled_token_ids: torch.Tensor  # int64 [rows of the previous step's sampler], on the device
    batch_indices: np.ndarray  # int64
    source_rows: np.ndarray  # int64: row of sampled_token_ids for each batch index


class ModelRunner:
    def __init__(
        self,
        model: CausalLM,
        layout: KVLayout,
        num_blocks: int,
        config: EngineConfig,
        device: torch.device,
        max_model_len: int,
        verify_tokens_per_seq: int = 1,
    ):
        """verify_tokens_per_seq > 1 also captures graphs for steps of up to that many new
        tokens per sequence (a decode verifying drafts), below speculation's batch limit."""
        self.model = model
        self.block_size = layout.block_size
        self.device = torch.device(device)
        shape = layout.block_shape(num_blocks)
        self.kv_caches = [
            (
                torch.zeros(shape, dtype=layout.dtype, device=device),
                torch.zeros(shape, dtype=layout.dtype, device=device),
            )
            for _ in range(layout.num_layers)
        ]
        model.bind_kv_cache(self.kv_caches)
        self._uploader64 = HostUploader(torch.int64, self.device)
        self._uploader32 = HostUploader(torch.int32, self.device)
        self._pending_uploader = HostUploader(torch.int64, self.device)
        self._rows_uploader = HostUploader(torch.int64, self.device)
        self.decode_graphs: StepGraphs | None = None
        self.verify_graphs: StepGraphs | None = None
        if self.device.type == "cuda" and not config.model.enforce_eager:
            self.decode_graphs = StepGraphs(
                model,
                max_batch_size=config.scheduler.max_num_seqs,
                table_width=min(num_blocks, -(-max_model_len // layout.block_size)),
                num_kv_heads=layout.num_kv_heads,
                block_size=layout.block_size,
                max_seq_len=max_model_len,
                device=self.device,
            )
            self.decode_graphs.capture()
            spec = config.speculative
            if verify_tokens_per_seq > 1 and spec is not None:
                verify_batch = min(config.scheduler.max_num_seqs, spec.disable_batch_size)
                self.verify_graphs = self.decode_graphs.sibling(verify_batch, verify_tokens_per_seq)
                self.verify_graphs.capture(pool=self.decode_graphs.pool)

    def execute(self, batch: ScheduledBatch, pending: PendingInputs | None = None) -> ModelStepOutput:
        """Queue the step's forward on the device; nothing here waits for the device."""
        return self.execute_inputs(self.host_inputs(batch), batch.block_copies, pending)

    def host_inputs(self, batch: ScheduledBatch) -> HostInputs:
        return _host_inputs(batch, self.block_size)

    def shutdown(self) -> None:
        """Nothing to release in one process (TensorParallelRunner stops its workers here)."""

    @torch.inference_mode()
    def execute_inputs(
        self, host: HostInputs, block_copies: list[tuple[int, int]], pending: PendingInputs | None
    ) -> ModelStepOutput:
        """The step from host arrays: what every tensor-parallel rank runs for the same step."""
        if block_copies:
            self._copy_blocks(block_copies)
        graphs = self._graphs_for(host)
        if graphs is not None:
            return self._replay(graphs, host, pending)
        inputs = self._upload(host)
        if pending is not None:
            self._fill_pending(inputs.input_ids, pending, host.query_start_loc)
        with forward_context(inputs.metadata):
            hidden = self.model(inputs.input_ids, inputs.positions)
        return _step_output(host, self.model.compute_logits(hidden[inputs.logits_indices]))

    def _graphs_for(self, host: HostInputs) -> StepGraphs | None:
        if self.decode_graphs is not None and host.is_plain_decode:
            if self.decode_graphs.fits(host.num_seqs, host.query_lens):
                return self.decode_graphs
        if self.verify_graphs is not None and self.verify_graphs.fits(host.num_seqs, host.query_lens):
            return self.verify_graphs
        return None

    def _replay(self, graphs: StepGraphs, host: HostInputs, pending: PendingInputs | None) -> ModelStepOutput:
        input_ids = graphs.load_inputs(
            host.input_ids,
            host.positions,
            host.slot_mapping,
            host.query_start_loc,
            host.seq_lens,
            host.block_tables,
        )
        if pending is not None:
            self._fill_pending(input_ids, pending, host.query_start_loc)
        hidden = graphs.replay(host.num_seqs)
        if graphs is self.decode_graphs:  # row i is sequence i's one token, and it samples
            return ModelStepOutput(
                self.model.compute_logits(hidden[: host.num_seqs]), host.sample_seq_indices, {}
            )
        rows = self._rows_uploader.upload([host.logits_indices])
        return _step_output(host, self.model.compute_logits(hidden[rows]))

    def _fill_pending(
        self, input_ids: torch.Tensor, pending: PendingInputs, query_start_loc: np.ndarray
    ) -> None:
        """Copy the tokens the previous step sampled into their places, device to device."""
        flat_indices = query_start_loc[pending.batch_indices + 1].astype(np.int64) - 1
        count = len(flat_indices)
        source = pending.sampled_token_ids
        # Steady-state decode: the same sequences in the same order as last step.
        if _is_range(flat_indices) and _is_range(pending.source_rows):
            input_ids[:count].copy_(source[:count])
            return
        indices = self._pending_uploader.upload([flat_indices, pending.source_rows])
        input_ids.index_copy_(0, indices[:count], source.index_select(0, indices[count:]))

    def _copy_blocks(self, copies: list[tuple[int, int]]) -> None:
        pairs = to_device(copies, torch.int64, self.device)
        src, dst = pairs[:, 0], pairs[:, 1]
        for k_cache, v_cache in self.kv_caches:
            k_cache[dst] = k_cache[src]
            v_cache[dst] = v_cache[src]

    def _upload(self, host: HostInputs) -> _StepInputs:
        """Two host-to-device copies per step: all int64 inputs, then all int32 ones."""
        sizes64 = [len(host.input_ids), len(host.positions), len(host.slot_mapping)]
        flat64 = self._uploader64.upload(
            [host.input_ids, host.positions, host.slot_mapping, host.logits_indices]
        )
        input_ids, positions, slot_mapping, logits_indices = flat64.split(
            [*sizes64, len(host.logits_indices)]
        )
        num_seqs = host.num_seqs
        flat32 = self._uploader32.upload([host.query_start_loc, host.seq_lens, host.block_tables])
        query_start_loc, seq_lens, tables = flat32.split([num_seqs + 1, num_seqs, host.block_tables.size])
        metadata = AttentionMetadata(
            query_start_loc=query_start_loc,
            seq_lens=seq_lens,
            block_tables=tables.view(host.block_tables.shape),
            slot_mapping=slot_mapping,
            query_lens_cpu=host.query_lens,
            seq_lens_cpu=host.seq_lens.tolist(),
            block_size=self.block_size,
        )
        return _StepInputs(input_ids, positions, metadata, logits_indices)


@dataclass
class HostInputs:
    """One step's inputs as host arrays, before they go to the device."""

    input_ids: np.ndarray  # int64 [T]
    positions: np.ndarray  # int64 [T]
    slot_mapping: np.ndarray  # int64 [T]
    logits_indices: np.ndarray  # int64: sampled rows first, then prompt-logprob rows
    query_start_loc: np.ndarray  # int32 [S + 1]
    seq_lens: np.ndarray  # int32 [S]
    block_tables: np.ndarray  # int32 [S, max blocks in the batch]
    query_lens: list[int]
    sample_seq_indices: list[int]
    prompt_logits_rows: dict[int, tuple[int, int]]
    num_spec_rows: int = 0  # the last rows of logits_indices: positions after a draft token

    @property
    def num_seqs(self) -> int:
        return len(self.query_lens)

    @property
    def is_plain_decode(self) -> bool:
        """One new token per sequence, each sampled, no prompt logits: graph-replayable."""
        return (
            len(self.input_ids) == self.num_seqs == len(self.sample_seq_indices)
            and not self.prompt_logits_rows
        )


def _step_output(host: HostInputs, logits: torch.Tensor) -> ModelStepOutput:
    """Logits of host.logits_indices' rows -> sampled rows, prompt logits, draft rows."""
    prompt_logits = {
        batch_index: logits[start:end] for batch_index, (start, end) in host.prompt_logits_rows.items()
    }
    spec_logits = logits[len(logits) - host.num_spec_rows :] if host.num_spec_rows else None
    return ModelStepOutput(
        logits[: len(host.sample_seq_indices)], host.sample_seq_indices, prompt_logits, spec_logits
    )


def _host_inputs(batch: ScheduledBatch, block_size: int) -> HostInputs:
    if all(
        num_new == 1 and seq.num_computed_tokens + 1 == seq.num_tokens
        for seq, num_new in zip(batch.seqs, batch.num_new_tokens)
    ):
        return _decode_host_inputs(batch, block_size)
    return _mixed_host_inputs(batch, block_size)


def _block_table_array(batch: ScheduledBatch) -> np.ndarray:
    tables = [seq.block_table for seq in batch.seqs]
    block_tables = np.zeros((len(tables), max(map(len, tables))), dtype=np.int32)
    for row, table in enumerate(tables):
        block_tables[row, : len(table)] = table
    return block_tables


def _decode_host_inputs(batch: ScheduledBatch, block_size: int) -> HostInputs:
    """Every sequence feeds its one newest token and samples: vectorised, no per-token loop."""
    seqs = batch.seqs
    num_seqs = len(seqs)
    positions = np.fromiter((seq.num_computed_tokens for seq in seqs), np.int64, num_seqs)
    input_ids = np.fromiter((_input_token(seq, seq.num_computed_tokens) for seq in seqs), np.int64, num_seqs)
    block_tables = _block_table_array(batch)
    blocks = block_tables[np.arange(num_seqs), positions // block_size].astype(np.int64)
    return HostInputs(
        input_ids=input_ids,
        positions=positions,
        slot_mapping=blocks * block_size + positions % block_size,
        logits_indices=np.arange(num_seqs, dtype=np.int64),
        query_start_loc=np.arange(num_seqs + 1, dtype=np.int32),
        seq_lens=(positions + 1).astype(np.int32),
        block_tables=block_tables,
        query_lens=[1] * num_seqs,
        sample_seq_indices=list(range(num_seqs)),
        prompt_logits_rows={},
    )


def _mixed_host_inputs(batch: ScheduledBatch, block_size: int) -> HostInputs:
    input_ids: list[int] = []
    positions: list[np.ndarray] = []
    slots: list[np.ndarray] = []
    query_lens: list[int] = []
    seq_lens: list[int] = []
    sample_positions: list[int] = []
    sample_seq_indices: list[int] = []
    prompt_positions: list[np.ndarray] = []
    prompt_logits_rows: dict[int, tuple[int, int]] = {}
    spec_positions: list[int] = []
    max_blocks = max(len(seq.block_table) for seq in batch.seqs)
    block_tables = np.zeros((len(batch.seqs), max_blocks), dtype=np.int32)
    for batch_index, (seq, num_new) in enumerate(zip(batch.seqs, batch.num_new_tokens)):
        start, end = seq.num_computed_tokens, seq.num_computed_tokens + num_new
        flat_start = len(input_ids)
        num_drafts = len(seq.spec_token_ids)
        known = (seq.token_ids + seq.spec_token_ids if num_drafts else seq.token_ids)[start:end]
        input_ids.extend(known)
        input_ids.extend([PLACEHOLDER_TOKEN] * (num_new - len(known)))  # pending: see PendingInputs
        table = seq.block_table
        block_tables[batch_index, : len(table)] = table
        if num_new == 1:  # decode: skip the numpy calls, they dominate at one token
            positions.append(np.array([start]))
            slots.append(np.array([table[start // block_size] * block_size + start % block_size]))
        else:
            seq_positions = np.arange(start, end)
            positions.append(seq_positions)
            slots.append(
                block_tables[batch_index, seq_positions // block_size].astype(np.int64) * block_size
                + seq_positions % block_size
            )
        query_lens.append(num_new)
        seq_lens.append(end)
        if end == seq.num_tokens + num_drafts:
            # With drafts the sampled row is the last real token's; each draft adds one row.
            sample_positions.append(flat_start + num_new - 1 - num_drafts)
            sample_seq_indices.append(batch_index)
            spec_positions.extend(range(flat_start + num_new - num_drafts, flat_start + num_new))
        if _wants_prompt_logits(seq, start):
            # The logits at prompt position p score prompt token p + 1.
            last = min(end, seq.num_prompt_tokens - 1)
            prompt_positions.append(np.arange(flat_start, flat_start + last - start))
            prompt_logits_rows[batch_index] = (0, last - start)
    offset = len(sample_positions)
    for batch_index, (_, length) in prompt_logits_rows.items():
        prompt_logits_rows[batch_index] = (offset, offset + length)
        offset += length
    logits_indices = np.concatenate(
        [
            np.asarray(sample_positions, dtype=np.int64),
            *prompt_positions,
            np.asarray(spec_positions, np.int64),
        ]
    ).astype(np.int64)
    return HostInputs(
        input_ids=np.asarray(input_ids, dtype=np.int64),
        positions=np.concatenate(positions).astype(np.int64),
        slot_mapping=np.concatenate(slots).astype(np.int64),
        logits_indices=logits_indices,
        query_start_loc=np.cumsum([0, *query_lens], dtype=np.int32),
        seq_lens=np.asarray(seq_lens, dtype=np.int32),
        block_tables=block_tables,
        query_lens=query_lens,
        sample_seq_indices=sample_seq_indices,
        prompt_logits_rows=prompt_logits_rows,
        num_spec_rows=len(spec_positions),
    )


def _input_token(seq, position: int) -> int:
    token_ids = seq.token_ids
    return token_ids[position] if position < len(token_ids) else PLACEHOLDER_TOKEN


def _is_range(indices: np.ndarray) -> bool:
    """indices == 0, 1, ..., len - 1"""
    return bool(len(indices) and indices[-1] == len(indices) - 1 and np.all(np.diff(indices) == 1))


@dataclass
class _StepInputs:
    input_ids: torch.Tensor
    positions: torch.Tensor
    metadata: AttentionMetadata
    logits_indices: torch.Tensor


def _wants_prompt_logits(seq, start: int) -> bool:
    if seq.params.prompt_logprobs is None or seq.request.prompt_logprobs is None:
        return False
    # Only on the first pass over the prompt (not when recomputing after preemption).
    return start < seq.num_prompt_tokens - 1 and len(seq.request.prompt_logprobs) <= start + 1
