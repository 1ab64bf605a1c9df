"""create_speculator: the engine's Speculator for its config (None without speculation)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ponder.engine.spec.draft_model import DraftModelProposer
from ponder.engine.spec.ngram import NgramProposer
from ponder.engine.spec.proposer import Proposer
from ponder.engine.spec.speculator import Speculator
from ponder.errors import SpeculativeConfigError

if TYPE_CHECKING:
    from ponder.engine.llm_engine import LLMEngine


def create_speculator(engine: LLMEngine, num_blocks: int) -> Speculator | None:
    config = engine.config
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
        proposer = DraftModelProposer(
            spec,
            config,
            engine.arch,
            engine.tokenizer,
            engine.dtype,
            engine.device,
            engine.max_model_len,
            num_blocks,
        )
    return Speculator(
        spec, proposer, engine.kv, engine.max_model_len, config.scheduler.max_num_batched_tokens
    )
