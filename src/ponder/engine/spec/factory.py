"""create_speculator: the engine's Speculator for its config (None without speculation)."""

from __future__ import annotations

import time

import torch

from ponder.config import EngineConfig
from ponder.engine.kv.manager import KVCacheManager
from ponder.engine.spec.draft_model import DraftModelProposer
from ponder.engine.spec.ngram import NgramProposer
from ponder.engine.spec.proposer import Proposer
from ponder.engine.spec.speculator import Speculator
from ponder.engine.tokenizer import Tokenizer
from ponder.errors import SpeculativeConfigError
from ponder.models.hf_config import ArchConfig


def create_speculator(
    config: EngineConfig,
    arch: ArchConfig,
    tokenizer: Tokenizer,
    dtype: torch.dtype,
    device: torch.device,
    max_model_len: int,
    kv: KVCacheManager,
) -> Speculator | None:
    spec = config.speculative
    if spec is None:
        return None
    if config.parallel.tensor_parallel_size > 1 and spec.method == "draft":
        raise SpeculativeConfigError(
            "a draft model does not run under tensor parallelism yet; use speculative_method ngram",
            param="speculative_method",
        )
    proposer: Proposer
    if spec.method == "ngram":
        proposer = NgramProposer(spec.ngram_min, spec.ngram_max)
    else:
        # The draft's pool holds as many tokens as the target's (its blocks are smaller).
        proposer = DraftModelProposer(
            spec, config, arch, tokenizer, dtype, device, max_model_len, kv.num_blocks
        )
    # On a CPU the process's CPU time: wall time on a shared machine swings with other load.
    clock = time.process_time if device.type == "cpu" else time.perf_counter
    return Speculator(spec, proposer, kv, max_model_len, config.scheduler.max_num_batched_tokens, clock)
