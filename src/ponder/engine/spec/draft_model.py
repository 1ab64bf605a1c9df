"""Draft-model proposer: a small model with its own paged KV cache proposes k tokens greedily.

The draft is any checkpoint with the target's tokenizer, or the built-in model cut to its first
layers (`builtin-small`: the same embeddings and head, a fraction of the compute). Each proposal
round first catches the draft's KV up with the sequence's real tokens (its prompt the first
time, afterwards the tokens accepted since), then runs k single-token steps for all sequences
at once. Draft KV computed from rejected drafts is rolled back on the next round."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch

from ponder.assets import default_model_dir
from ponder.config import BUILTIN_SMALL_DRAFT, EngineConfig, SpeculativeConfig
from ponder.engine.kv.manager import KVCacheManager, cdiv
from ponder.engine.model_runner import ModelRunner
from ponder.engine.rank_setup import kv_layout_for
from ponder.engine.request import Sequence
from ponder.engine.sampling_params import SamplingParams
from ponder.engine.scheduler import ScheduledBatch
from ponder.engine.tokenizer import Tokenizer
from ponder.errors import SpeculativeConfigError
from ponder.models.hf_config import ArchConfig, read_arch_config
from ponder.models.loader import checkpoint_files, iter_checkpoint_weights
from ponder.models.registry import model_class_for

_NO_PROMPT_LOGPROBS = SamplingParams(max_tokens=None)


@dataclass(eq=False)
class _DraftSequence:
    """The draft's view of one target sequence: what ModelRunner reads off a Sequence."""

    token_ids: list[int]
    num_prompt_tokens: int
    num_computed_tokens: int = 0
    block_table: list[int] = field(default_factory=list)
    spec_token_ids: list[int] = field(default_factory=list)  # the draft verifies nothing
    params: SamplingParams = field(default_factory=lambda: _NO_PROMPT_LOGPROBS)

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)


class DraftModelProposer:
    def __init__(
        self,
        spec: SpeculativeConfig,
        config: EngineConfig,
        target_arch: ArchConfig,
        target_tokenizer: Tokenizer,
        dtype: torch.dtype,
        device: torch.device,
        max_model_len: int,
        num_blocks: int,
    ):
        model_dir, arch = _draft_arch(spec)
        _check_compatible(model_dir, arch, target_arch, target_tokenizer)
        model = _load(model_dir, arch, dtype, device)
        layout = kv_layout_for(arch, config.cache.block_size, dtype, 1)
        self.runner = ModelRunner(model, layout, num_blocks, config, device, max_model_len)
        self.kv = KVCacheManager(num_blocks, config.cache.block_size, enable_prefix_caching=False)
        # Per proposed token, the draft costs about its share of the target's layers.
        self.cost_per_token = arch.num_hidden_layers / max(1, target_arch.num_hidden_layers)
        self._states: dict[int, _DraftSequence] = {}

    @torch.inference_mode()
    def propose(self, wanted: list[tuple[Sequence, int]]) -> list[list[int]]:
        drafts: list[list[int]] = [[] for _ in wanted]
        active: list[tuple[int, _DraftSequence, int]] = []  # (index in wanted, state, k)
        for index, (seq, k) in enumerate(wanted):
            state = self._catch_up(seq)
            if state is not None:
                active.append((index, state, k))
        while active:
            batch = ScheduledBatch(
                seqs=[cast(Sequence, state) for _, state, _ in active],
                num_new_tokens=[state.num_tokens - state.num_computed_tokens for _, state, _ in active],
            )
            logits = self.runner.execute(batch).sample_logits
            tokens = logits.argmax(dim=-1).tolist()
            still: list[tuple[int, _DraftSequence, int]] = []
            for (index, state, k), token in zip(active, tokens, strict=True):
                state.num_computed_tokens = state.num_tokens
                drafts[index].append(token)
                if len(drafts[index]) < k and self.kv.allocate_slots(cast(Sequence, state), 1):
                    state.token_ids.append(token)
                    still.append((index, state, k))
            active = still
        return drafts

    def _catch_up(self, seq: Sequence) -> _DraftSequence | None:
        """The draft state of seq with its KV valid for the tokens both share and slots
        allocated for the rest; None when the draft pool is full (seq gets no proposal)."""
        state = self._states.get(seq.seq_id)
        if state is None:
            state = self._states[seq.seq_id] = _DraftSequence(list(seq.token_ids), seq.num_prompt_tokens)
        else:
            valid = _common_prefix(state.token_ids, seq.token_ids, state.num_computed_tokens)
            state.token_ids = list(seq.token_ids)
            self._roll_back(state, min(valid, len(seq.token_ids) - 1))
        if not self.kv.allocate_slots(cast(Sequence, state), state.num_tokens - state.num_computed_tokens):
            self.forget(seq.seq_id)
            return None
        return state

    def _roll_back(self, state: _DraftSequence, num_computed: int) -> None:
        state.num_computed_tokens = num_computed
        keep = cdiv(num_computed, self.kv.block_size)
        for block_id in state.block_table[keep:]:
            self.kv.pool.release(block_id)
        del state.block_table[keep:]

    def forget(self, seq_id: int) -> None:
        state = self._states.pop(seq_id, None)
        if state is not None:
            self.kv.free(cast(Sequence, state))


def _common_prefix(a: list[int], b: list[int], limit: int) -> int:
    limit = min(limit, len(a), len(b))
    if a[:limit] == b[:limit]:
        return limit
    count = 0
    while a[count] == b[count]:
        count += 1
    return count


def _draft_arch(spec: SpeculativeConfig) -> tuple[Path, ArchConfig]:
    if spec.draft_model == BUILTIN_SMALL_DRAFT:
        model_dir = default_model_dir()
        arch = read_arch_config(model_dir)
        if spec.draft_layers > arch.num_hidden_layers:
            raise SpeculativeConfigError(
                f"speculative_draft_layers {spec.draft_layers} exceeds the built-in model's "
                f"{arch.num_hidden_layers} layers",
                param="speculative_draft_layers",
            )
        return model_dir, dataclasses.replace(arch, num_hidden_layers=spec.draft_layers)
    model_dir = Path(spec.draft_model)
    if not (model_dir / "config.json").is_file():
        raise SpeculativeConfigError(
            f"speculative_model {spec.draft_model!r} is not a checkpoint directory (no config.json); "
            f"pass a HF checkpoint dir or {BUILTIN_SMALL_DRAFT!r}",
            param="speculative_model",
        )
    return model_dir, read_arch_config(model_dir)


def _check_compatible(
    model_dir: Path, arch: ArchConfig, target_arch: ArchConfig, target_tokenizer: Tokenizer
) -> None:
    """Draft token ids must mean what the target's mean: same vocabulary, same tokenizer."""
    if arch.vocab_size != target_arch.vocab_size:
        raise SpeculativeConfigError(
            f"the draft model's vocabulary has {arch.vocab_size} entries, the target's "
            f"{target_arch.vocab_size}: a draft must share the target's tokenizer",
            param="speculative_model",
        )
    if (model_dir / "tokenizer.json").is_file():
        draft_vocab = Tokenizer.from_dir(model_dir).backend.get_vocab(with_added_tokens=True)
        if draft_vocab != target_tokenizer.backend.get_vocab(with_added_tokens=True):
            raise SpeculativeConfigError(
                "the draft model's tokenizer differs from the target's: a draft must share it",
                param="speculative_model",
            )


def _load(model_dir: Path, arch: ArchConfig, dtype: torch.dtype, device: torch.device) -> Any:
    """The draft's model; a cut built-in model skips the weights of the layers it drops."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = model_class_for(arch)(arch)
    finally:
        torch.set_default_dtype(previous)
    model.load_weights(_kept_layers(iter_checkpoint_weights(checkpoint_files(model_dir)), arch))
    return model.eval()


def _kept_layers(weights: Iterator[tuple[str, Any]], arch: ArchConfig) -> Iterator[tuple[str, Any]]:
    for name, weight in weights:
        parts = name.split(".")
        if "layers" in parts:
            layer = parts[parts.index("layers") + 1]
            if layer.isdigit() and int(layer) >= arch.num_hidden_layers:
                continue
        yield name, weight
