"""Logprobs of given tokens plus the top-k at each position: computed on the device, turned into
dicts on the host (sampled tokens and prompt tokens alike)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ponder.engine.outputs import Logprob, PositionLogprobs
from ponder.engine.transfers import to_device


def prompt_logprobs(logits: torch.Tensor, next_token_ids: Sequence[int], k: int) -> list[PositionLogprobs]:
    """Per prompt position: the logprob of the prompt's next token plus the top-k (logits[i]
    predicts next_token_ids[i])."""
    tensors = prompt_logprob_tensors(logits, next_token_ids, k)
    if not next_token_ids:
        return []
    return position_logprob_entries([t.cpu() for t in tensors], [k] * len(next_token_ids))


def prompt_logprob_tensors(logits: torch.Tensor, next_token_ids: Sequence[int], k: int) -> list[torch.Tensor]:
    """prompt_logprobs on the device; position_logprob_entries turns them into dicts."""
    if logits.shape[0] != len(next_token_ids):
        raise ValueError(f"{logits.shape[0]} logit rows for {len(next_token_ids)} next tokens")
    if not next_token_ids:
        return []
    raw_logprobs = torch.log_softmax(logits.float(), dim=-1)
    token_ids = to_device(list(next_token_ids), torch.int64, logits.device)
    return position_logprob_tensors(raw_logprobs, token_ids, [k] * len(next_token_ids))


def position_logprob_tensors(
    raw_logprobs: torch.Tensor, token_ids: torch.Tensor, top_ks: Sequence[int]
) -> list[torch.Tensor]:
    """Row i's chosen token token_ids[i] and its top_ks[i] most likely tokens, as tensors:
    [token ids, chosen logprobs, chosen ranks, top ids, top logprobs, top ranks].
    Rank = 1 + the number of tokens strictly more likely, so tied tokens share a rank."""
    chosen = raw_logprobs.gather(1, token_ids[:, None])
    chosen_ranks = (raw_logprobs > chosen).sum(dim=-1) + 1
    k_max = min(max(top_ks), raw_logprobs.shape[1])
    top_values, top_ids = raw_logprobs.topk(k_max, dim=-1)
    top_ranks = (top_values[:, None, :] > top_values[:, :, None]).sum(dim=-1) + 1
    return [token_ids, chosen.squeeze(1), chosen_ranks, top_ids, top_values, top_ranks]


def position_logprob_entries(
    tensors: Sequence[torch.Tensor], top_ks: Sequence[int]
) -> list[PositionLogprobs]:
    """position_logprob_tensors (on the host) -> one dict per row, the chosen token first."""
    result: list[PositionLogprobs] = []
    rows = zip(*(tensor.tolist() for tensor in tensors), top_ks, strict=True)
    for token_id, logprob, rank, ids, values, ranks, k in rows:
        entry: PositionLogprobs = {token_id: Logprob(logprob, rank)}
        for top_id, value, top_rank in zip(ids[:k], values[:k], ranks[:k], strict=True):
            entry.setdefault(top_id, Logprob(value, top_rank))
        result.append(entry)
    return result
