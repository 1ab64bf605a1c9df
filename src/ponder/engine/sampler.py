"""Sampler: a batch of logits -> next tokens, with raw logprobs and per-token confidence."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ponder.engine.outputs import Logprob, PositionLogprobs
from ponder.engine.sampling_params import SamplingParams


@dataclass
class SamplingRow:
    """What the sampler needs to know about the request behind one row of logits."""

    params: SamplingParams
    prompt_token_ids: Sequence[int]
    output_token_ids: Sequence[int]
    # Set when the request has a seed (see make_generator); None: the sampler's own RNG.
    generator: torch.Generator | None = None
    # The model's eos ids. While len(output) < min_tokens they and params.stop_token_ids are
    # masked; eos ids are left alone under params.ignore_eos, since they end nothing then.
    eos_token_ids: frozenset[int] = frozenset()


@dataclass
class SamplerOutput:
    token_ids: list[int]
    # log_softmax of the logits as they came in (before penalties and temperature).
    logprobs: list[float]
    # Per row with params.logprobs set: the chosen token plus the top-k, ranked by raw logprob.
    top_logprobs: list[PositionLogprobs | None]
    # Per row with params.confidence_top_k > 0: -mean of its top-k raw logprobs.
    confidences: list[float | None]


def make_generator(seed: int, device: torch.device | str) -> torch.Generator:
    """The per-request generator for a seeded request; create it once, reuse it every step."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


class Sampler:
    """Picks one token per row. Batched on tensors; the only per-row loop draws seeded noise."""

    def __init__(self, seed: int | None = None):
        self._seed = seed
        self._generators: dict[torch.device, torch.Generator] = {}

    @torch.inference_mode()
    def __call__(self, logits: torch.Tensor, rows: Sequence[SamplingRow]) -> SamplerOutput:
        if logits.dim() != 2 or logits.shape[0] != len(rows):
            raise ValueError(f"logits must be [{len(rows)}, vocab], got {tuple(logits.shape)}")
        if not rows:
            return SamplerOutput([], [], [], [])
        raw_logprobs = torch.log_softmax(logits.float(), dim=-1)
        work = logits.to(torch.float32, copy=True)
        apply_penalties(work, rows)
        mask_stop_tokens_before_min_tokens(work, rows)
        token_ids = work.argmax(dim=-1)
        random_rows = [i for i, row in enumerate(rows) if not row.params.greedy]
        if random_rows:
            token_ids[random_rows] = self._sample(work[random_rows], [rows[i] for i in random_rows])
        chosen_logprobs = raw_logprobs.gather(1, token_ids[:, None]).squeeze(1)
        return SamplerOutput(
            token_ids=token_ids.tolist(),
            logprobs=chosen_logprobs.tolist(),
            top_logprobs=_top_logprobs(raw_logprobs, token_ids, rows),
            confidences=_confidences(raw_logprobs, rows),
        )

    def _sample(self, logits: torch.Tensor, rows: list[SamplingRow]) -> torch.Tensor:
        temperatures = logits.new_tensor([row.params.temperature for row in rows])
        logits.div_(temperatures[:, None])
        apply_top_k_top_p(logits, rows)
        apply_min_p(logits, rows)
        probs = torch.softmax(logits, dim=-1)
        # Exponential race (Gumbel-max): argmax(p / E) with E ~ Exp(1) draws from p. Each seeded
        # row draws its noise from its own generator in a batch-independent shape, so its tokens
        # are the same alone or in any batch.
        noise = self._exponential_noise(rows, probs.shape[1], probs.device)
        return (probs / noise).argmax(dim=-1)

    def _exponential_noise(
        self, rows: list[SamplingRow], vocab_size: int, device: torch.device
    ) -> torch.Tensor:
        noise = torch.empty(len(rows), vocab_size, device=device)
        unseeded = [i for i, row in enumerate(rows) if row.generator is None]
        if len(unseeded) == len(rows):
            noise.exponential_(generator=self._global_generator(device))
        elif unseeded:
            shared = torch.empty(len(unseeded), vocab_size, device=device)
            noise[unseeded] = shared.exponential_(generator=self._global_generator(device))
        for i, row in enumerate(rows):
            if row.generator is not None:
                noise[i].exponential_(generator=row.generator)
        # Exp(1) can come out as exactly 0, which would make p / 0 = nan win argmax.
        return noise.clamp_min_(torch.finfo(noise.dtype).tiny)

    def _global_generator(self, device: torch.device) -> torch.Generator:
        if device not in self._generators:
            generator = torch.Generator(device=device)
            if self._seed is None:
                generator.seed()
            else:
                generator.manual_seed(self._seed)
            self._generators[device] = generator
        return self._generators[device]


def apply_penalties(logits: torch.Tensor, rows: Sequence[SamplingRow]) -> None:
    """In place: repetition penalty (HF: over prompt + output), then frequency and presence
    penalties (OpenAI: over output counts)."""
    indices = [i for i, row in enumerate(rows) if row.params.needs_penalties]
    if not indices:
        return
    penalized = [rows[i] for i in indices]
    selected = logits[indices]
    output_counts = _token_counts([row.output_token_ids for row in penalized], logits)
    repetition = selected.new_tensor([row.params.repetition_penalty for row in penalized])[:, None]
    if bool((repetition != 1.0).any()):
        in_prompt = _token_counts([row.prompt_token_ids for row in penalized], logits) > 0
        seen = in_prompt | (output_counts > 0)
        scaled = torch.where(selected > 0, selected / repetition, selected * repetition)
        selected = torch.where(seen, scaled, selected)
    frequency = selected.new_tensor([row.params.frequency_penalty for row in penalized])[:, None]
    presence = selected.new_tensor([row.params.presence_penalty for row in penalized])[:, None]
    selected -= frequency * output_counts + presence * (output_counts > 0)
    logits[indices] = selected


def _token_counts(sequences: Sequence[Sequence[int]], like: torch.Tensor) -> torch.Tensor:
    """[len(sequences), vocab] float counts of each token id per sequence."""
    counts = like.new_zeros(len(sequences), like.shape[1])
    lengths = torch.tensor([len(seq) for seq in sequences], device=like.device)
    if int(lengths.sum()) == 0:
        return counts
    token_ids = torch.tensor(list(itertools.chain.from_iterable(sequences)), device=like.device)
    row_ids = torch.repeat_interleave(torch.arange(len(sequences), device=like.device), lengths)
    counts.index_put_((row_ids, token_ids), torch.ones_like(token_ids, dtype=counts.dtype), True)
    return counts


def mask_stop_tokens_before_min_tokens(logits: torch.Tensor, rows: Sequence[SamplingRow]) -> None:
    """In place: a row still short of min_tokens cannot pick a token that would end it."""
    row_ids: list[int] = []
    token_ids: list[int] = []
    vocab_size = logits.shape[1]
    for i, row in enumerate(rows):
        params = row.params
        if len(row.output_token_ids) >= params.min_tokens:
            continue
        enders = set(params.stop_token_ids or ())
        if not params.ignore_eos:
            enders |= row.eos_token_ids
        enders = {t for t in enders if t < vocab_size}
        row_ids.extend([i] * len(enders))
        token_ids.extend(enders)
    if row_ids:
        logits[row_ids, token_ids] = -math.inf


def apply_top_k_top_p(logits: torch.Tensor, rows: Sequence[SamplingRow]) -> None:
    """In place. Both cut by value, so tokens tied with the last kept one are kept too and the
    result never depends on how a sort orders ties; the most likely token always survives."""
    vocab_size = logits.shape[1]
    top_k = [row.params.top_k if row.params.top_k > 0 else vocab_size for row in rows]
    top_p = [row.params.top_p for row in rows]
    uses_top_k = any(k < vocab_size for k in top_k)
    uses_top_p = any(p < 1.0 for p in top_p)
    if not (uses_top_k or uses_top_p):
        return
    sorted_logits = logits.sort(dim=-1, descending=True).values
    if uses_top_k:
        k_index = torch.tensor([min(k, vocab_size) - 1 for k in top_k], device=logits.device)
        kth_largest = sorted_logits.gather(1, k_index[:, None])
        logits.masked_fill_(logits < kth_largest, -math.inf)
        sorted_logits.masked_fill_(sorted_logits < kth_largest, -math.inf)
    if uses_top_p:
        sorted_probs = torch.softmax(sorted_logits, dim=-1)
        # Keep a token while the mass strictly above it is still short of top_p: the smallest
        # set reaching top_p. cummax undoes rounding dips, so the kept tokens form a prefix.
        mass_before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
        mass_before = torch.cummax(mass_before, dim=-1).values
        limits = logits.new_tensor(top_p)[:, None]
        num_kept = (mass_before < limits).sum(dim=-1).clamp_min(1)
        cutoff = sorted_logits.gather(1, (num_kept - 1)[:, None])
        cutoff = torch.where(limits < 1.0, cutoff, torch.full_like(cutoff, -math.inf))
        logits.masked_fill_(logits < cutoff, -math.inf)


def apply_min_p(logits: torch.Tensor, rows: Sequence[SamplingRow]) -> None:
    """In place: drop tokens with p < min_p * p_max, compared in log space (no extra softmax)."""
    min_p = [row.params.min_p for row in rows]
    if not any(p > 0.0 for p in min_p):
        return
    log_min_p = logits.new_tensor([math.log(p) if p > 0 else -math.inf for p in min_p])
    threshold = logits.max(dim=-1, keepdim=True).values + log_min_p[:, None]
    logits.masked_fill_(logits < threshold, -math.inf)


def prompt_logprobs(
    logits: torch.Tensor, next_token_ids: Sequence[int], k: int
) -> list[PositionLogprobs]:
    """Per prompt position: the logprob of the prompt's next token plus the top-k (logits[i]
    predicts next_token_ids[i])."""
    if logits.shape[0] != len(next_token_ids):
        raise ValueError(f"{logits.shape[0]} logit rows for {len(next_token_ids)} next tokens")
    if not next_token_ids:
        return []
    raw_logprobs = torch.log_softmax(logits.float(), dim=-1)
    token_ids = torch.tensor(list(next_token_ids), device=logits.device)
    return position_logprobs(raw_logprobs, token_ids, [k] * len(next_token_ids))


def position_logprobs(
    raw_logprobs: torch.Tensor, token_ids: torch.Tensor, top_ks: Sequence[int]
) -> list[PositionLogprobs]:
    """One dict per row: token_ids[i] first, then the row's top_ks[i] most likely tokens.
    Rank = 1 + the number of tokens strictly more likely, so tied tokens share a rank."""
    chosen = raw_logprobs.gather(1, token_ids[:, None])
    chosen_ranks = (raw_logprobs > chosen).sum(dim=-1) + 1
    k_max = min(max(top_ks), raw_logprobs.shape[1])
    top_values, top_ids = raw_logprobs.topk(k_max, dim=-1)
    top_ranks = (top_values[:, None, :] > top_values[:, :, None]).sum(dim=-1) + 1
    result: list[PositionLogprobs] = []
    rows = zip(
        token_ids.tolist(),
        chosen.squeeze(1).tolist(),
        chosen_ranks.tolist(),
        top_ids.tolist(),
        top_values.tolist(),
        top_ranks.tolist(),
        top_ks,
        strict=True,
    )
    for token_id, logprob, rank, ids, values, ranks, k in rows:
        entry: PositionLogprobs = {token_id: Logprob(logprob, rank)}
        for top_id, value, top_rank in zip(ids[:k], values[:k], ranks[:k], strict=True):
            entry.setdefault(top_id, Logprob(value, top_rank))
        result.append(entry)
    return result


def _top_logprobs(
    raw_logprobs: torch.Tensor, token_ids: torch.Tensor, rows: Sequence[SamplingRow]
) -> list[PositionLogprobs | None]:
    wanted = [i for i, row in enumerate(rows) if row.params.logprobs is not None]
    result: list[PositionLogprobs | None] = [None] * len(rows)
    if wanted:
        top_ks = [rows[i].params.logprobs or 0 for i in wanted]
        entries = position_logprobs(raw_logprobs[wanted], token_ids[wanted], top_ks)
        for i, entry in zip(wanted, entries, strict=True):
            result[i] = entry
    return result


def _confidences(raw_logprobs: torch.Tensor, rows: Sequence[SamplingRow]) -> list[float | None]:
    wanted = [i for i, row in enumerate(rows) if row.params.confidence_top_k > 0]
    result: list[float | None] = [None] * len(rows)
    if not wanted:
        return result
    vocab_size = raw_logprobs.shape[1]
    top_ks = raw_logprobs.new_tensor(
        [min(rows[i].params.confidence_top_k, vocab_size) for i in wanted]
    )
    top_values = raw_logprobs[wanted].topk(int(top_ks.max()), dim=-1).values
    in_top_k = torch.arange(top_values.shape[1], device=top_values.device) < top_ks[:, None]
    sums = torch.where(in_top_k, top_values, torch.zeros_like(top_values)).sum(dim=-1)
    for i, confidence in zip(wanted, (-sums / top_ks).tolist(), strict=True):
        result[i] = confidence
    return result
