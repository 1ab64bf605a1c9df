"""How many KV blocks fit: an exact count, a byte budget, or a fraction of free GPU memory."""

from __future__ import annotations

import logging

import torch

from ponder.config import DEFAULT_CPU_KV_CACHE_MEMORY, EngineConfig
from ponder.errors import InvalidRequestError

logger = logging.getLogger("ponder.engine")


def kv_bytes_per_token(arch, dtype: torch.dtype) -> int:
    element_size = torch.empty((), dtype=dtype).element_size()
    return 2 * arch.num_hidden_layers * arch.num_key_value_heads * arch.head_dim * element_size


def num_kv_blocks(
    config: EngineConfig, arch, dtype: torch.dtype, device: torch.device, max_model_len: int
) -> int:
    cache = config.cache
    bytes_per_block = kv_bytes_per_token(arch, dtype) * cache.block_size
    if cache.num_kv_blocks is not None:
        num_blocks = cache.num_kv_blocks
    else:
        budget = cache.kv_cache_memory or _default_budget(config, arch, device)
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
    return num_blocks


def _default_budget(config: EngineConfig, arch, device: torch.device) -> int:
    if device.type != "cuda":
        return DEFAULT_CPU_KV_CACHE_MEMORY
    free, total = torch.cuda.mem_get_info(device)
    used = total - free
    # Headroom for activations and logits of the largest step (a rough bound; profiled later).
    tokens = config.scheduler.max_num_batched_tokens
    activations = tokens * (arch.vocab_size + 4 * arch.intermediate_size + 8 * arch.hidden_size) * 4
    budget = int(total * config.cache.gpu_memory_utilization) - used - activations
    if budget <= 0:
        raise InvalidRequestError(
            f"no GPU memory left for the KV cache ({used / 2**30:.1f} GiB of {total / 2**30:.1f} GiB "
            "in use after loading the model); raise gpu_memory_utilization",
            param="gpu_memory_utilization",
        )
    return budget
