"""How many KV blocks fit: an exact count, a byte budget, or a fraction of free GPU memory."""

from __future__ import annotations

import logging

import torch

from ponder.config import DEFAULT_CPU_KV_CACHE_MEMORY, EngineConfig
from ponder.engine.kv.layout import KVLayout
from ponder.engine.model_runner import CausalLM
from ponder.errors import InvalidRequestError
from ponder.kernels.attention_metadata import AttentionMetadata
from ponder.layers.forward_context import forward_context
from ponder.models.hf_config import ArchConfig

logger = logging.getLogger("ponder.engine")


def num_kv_blocks(
    config: EngineConfig,
    layout: KVLayout,
    arch: ArchConfig,
    device: torch.device,
    max_model_len: int,
    model: CausalLM | None = None,
) -> int:
    """Pass the loaded model to size a GPU pool from a profiled forward instead of an estimate."""
    cache = config.cache
    bytes_per_block = layout.bytes_per_block
    if cache.num_kv_blocks is not None:
        num_blocks = cache.num_kv_blocks
    else:
        budget = cache.kv_cache_memory or _default_budget(config, layout, arch, device, max_model_len, model)
        num_blocks = budget // bytes_per_block
        # No point reserving more than every sequence at full length could use.
        most_useful = config.scheduler.max_num_seqs * -(-max_model_len // cache.block_size)
        num_blocks = min(num_blocks, most_useful)
    capacity = num_blocks * cache.block_size
    if capacity < max_model_len:
        raise InvalidRequestError(
            f"the KV cache holds {capacity} tokens ({num_blocks} blocks of {cache.block_size}), "
            f"fewer than max_model_len={max_model_len}: give it more memory (kv_cache_memory, "
            "gpu_memory_utilization) or lower max_model_len",
            param="kv_cache_memory",
        )
    logger.info(
        "KV cache: %d blocks x %d = %d tokens (%.2f GiB)",
        num_blocks,
        cache.block_size,
        capacity,
        num_blocks * bytes_per_block / 2**30,
    )
    return num_blocks


def _default_budget(
    config: EngineConfig,
    layout: KVLayout,
    arch: ArchConfig,
    device: torch.device,
    max_model_len: int,
    model: CausalLM | None,
) -> int:
    if device.type != "cuda":
        return DEFAULT_CPU_KV_CACHE_MEMORY
    tokens = config.scheduler.max_num_batched_tokens
    if model is not None:
        activations = profile_peak_activation_bytes(
            model, layout, device, tokens, config.scheduler.max_num_seqs, max_model_len
        )
    else:
        # No model to profile: a generous bound on activations and logits of the largest step.
        activations = tokens * (arch.vocab_size + 4 * arch.intermediate_size + 8 * arch.hidden_size) * 4
    free, total = torch.cuda.mem_get_info(device)
    used = total - free
    budget = int(total * config.cache.gpu_memory_utilization) - used - activations
    if budget <= 0:
        raise InvalidRequestError(
            f"no GPU memory left for the KV cache ({used / 2**30:.1f} GiB of {total / 2**30:.1f} GiB "
            "in use after loading the model); raise gpu_memory_utilization",
            param="gpu_memory_utilization",
        )
    return budget


@torch.inference_mode()
def profile_peak_activation_bytes(
    model: CausalLM,
    layout: KVLayout,
    device: torch.device,
    num_tokens: int,
    num_seqs: int,
    max_seq_len: int,
) -> int:
    """Peak memory of the largest step (num_tokens of prefill, then logits of num_seqs rows),
    measured by running it over a throwaway KV cache just big enough for it.

    The step is cut into sequences of at most max_seq_len tokens: a budget larger than the model's
    context would otherwise index the rotary table past its end (an illegal memory access)."""
    positions, metadata = profile_step(num_tokens, max_seq_len, layout.block_size, device)
    shape = layout.block_shape(metadata.block_tables.numel())
    caches = [
        (
            torch.empty(shape, dtype=layout.dtype, device=device),
            torch.empty(shape, dtype=layout.dtype, device=device),
        )
        for _ in range(layout.num_layers)
    ]
    model.bind_kv_cache(caches)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    baseline = torch.cuda.memory_allocated(device)
    with forward_context(metadata):
        hidden = model(torch.zeros(num_tokens, dtype=torch.long, device=device), positions)
    rows = hidden[-min(num_seqs, num_tokens) :]
    logits = model.compute_logits(rows)
    # The sampler holds log-probabilities and a working copy next to the logits.
    torch.log_softmax(logits, dim=-1).add_(logits.clone())
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - baseline
    del caches, hidden, logits, rows
    model.bind_kv_cache([(None, None)] * layout.num_layers)
    torch.cuda.empty_cache()
    logger.info("profiled peak activation memory: %.2f GiB", peak / 2**30)
    # Allocator slack and non-torch workspaces (cuBLAS, Triton) are covered by this margin.
    return int(peak * 1.1) + (256 << 20)


def profile_step(
    num_tokens: int, max_seq_len: int, block_size: int, device: torch.device
) -> tuple[torch.Tensor, AttentionMetadata]:
    """The largest prefill step as sequences of at most max_seq_len tokens, each in its own blocks."""
    lengths = [min(max_seq_len, num_tokens - start) for start in range(0, num_tokens, max_seq_len)]
    blocks_per_seq = -(-max(lengths) // block_size)
    seq_slots = blocks_per_seq * block_size
    starts = [0]
    for n in lengths:
        starts.append(starts[-1] + n)
    positions = torch.cat([torch.arange(n) for n in lengths]).to(device)
    slots = torch.cat([i * seq_slots + torch.arange(n) for i, n in enumerate(lengths)]).to(device)
    metadata = AttentionMetadata(
        query_start_loc=torch.tensor(starts, dtype=torch.int32, device=device),
        seq_lens=torch.tensor(lengths, dtype=torch.int32, device=device),
        block_tables=torch.arange(blocks_per_seq * len(lengths), dtype=torch.int32, device=device).view(
            len(lengths), blocks_per_seq
        ),
        slot_mapping=slots,
        query_lens_cpu=lengths,
        seq_lens_cpu=lengths,
        block_size=block_size,
    )
    return positions, metadata
