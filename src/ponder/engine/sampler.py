"""Sampler: a batch of logits -> next tokens, with raw logprobs and per-token confidence."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ponder.engine.logprobs import position_logprob_entries, position_logprob_tensors
from ponder.engine.outputs import PositionLogprobs
from ponder.engine.sampling_params import SamplingParams
from ponder.engine.structured.mask import TokenConstraint, apply_token_constraints
from ponder.engine.transfers import HostCopy, to_device
from ponder.kernels.dispatch import argmax_logsumexp


@dataclass
class SamplingRow:
    """What the sampler needs to know about the request behind one row of logits."""

    params: SamplingParams
    # Prompt + output tokens the host knows (the sequence's own list, not a copy: only penalties
    # read the ids themselves).
    token_ids: Sequence[int]
    num_prompt_tokens: int
    # Set when the request has a seed (see make_generator); None: the sampler's own RNG.
    generator: torch.Generator | None = None
    # The model's eos ids. While the output is shorter than min_tokens they and
    # params.stop_token_ids are masked; eos ids are left alone under params.ignore_eos.
    eos_token_ids: frozenset[int] = frozenset()
    # Output tokens sampled on the device whose ids are not in token_ids yet (asynchronous
    # scheduling). They count toward min_tokens; penalties need them on the host first.
    num_pending_tokens: int = 0
    # Structured output: the tokens allowed next (inactive while the model thinks).
    constraint: TokenConstraint | None = None

    @property
    def prompt_token_ids(self) -> Sequence[int]:
        return self.token_ids[: self.num_prompt_tokens]

    @property
    def output_token_ids(self) -> Sequence[int]:
        return self.token_ids[self.num_prompt_tokens :]

    @property
    def num_output_tokens(self) -> int:
        return len(self.token_ids) - self.num_prompt_tokens + self.num_pending_tokens


@dataclass
class SamplerOutput:
    token_ids: list[int]
    # log_softmax of the logits as they came in (before penalties and temperature).
    logprobs: list[float]
    # Per row with params.logprobs set: the chosen token plus the top-k, ranked by raw logprob.
    top_logprobs: list[PositionLogprobs | None]
    # Per row with params.confidence_top_k > 0: -mean of its top-k raw logprobs.
    confidences: list[float | None]


class DeviceSamples:
    """One batch's sampling result while it is still on the device.

    `token_ids` stays on the device (the next step can read its inputs from it); everything
    the host needs is already being copied back in the background, and `to_host` waits for it.
    """

    def __init__(
        self,
        token_ids: torch.Tensor,
        logprobs: torch.Tensor,
        top_logprobs: tuple[list[int], list[int], list[torch.Tensor]] | None,
        confidences: tuple[list[int], torch.Tensor] | None,
    ) -> None:
        self.token_ids = token_ids
        self.num_rows = token_ids.shape[0]
        self._top_rows, self._top_ks, top_tensors = top_logprobs or ([], [], [])
        self._confidence_rows = confidences[0] if confidences else []
        tensors = [token_ids, logprobs, *top_tensors]
        if confidences:
            tensors.append(confidences[1])
        self._copy = HostCopy(tensors)

    def wait(self) -> None:
        """Block until the device has produced the samples and they are on the host."""
        self._copy.wait()

    def to_host(self) -> SamplerOutput:
        host = self._copy.get()
        result = SamplerOutput(
            token_ids=host[0].tolist(),
            logprobs=host[1].tolist(),
            top_logprobs=[None] * self.num_rows,
            confidences=[None] * self.num_rows,
        )
        if self._top_rows:  # host[2:8]: the six position_logprob_tensors
            entries = position_logprob_entries(host[2:8], self._top_ks)
            for i, entry in zip(self._top_rows, entries, strict=True):
                result.top_logprobs[i] = entry
        if self._confidence_rows:
            for i, confidence in zip(self._confidence_rows, host[-1].tolist(), strict=True):
                result.confidences[i] = confidence
        return result


def make_generator(seed: int, device: torch.device | str) -> torch.Generator:
    """The per-request generator for a seeded request; create it once, reuse it every step."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


class Sampler:
    """Picks one token per row. Batched on tensors; the only per-row loop draws seeded noise.

    Nothing here waits for the device (per-row parameters travel by non-blocking copies), so a
    step can be sampled while the GPU still runs the step before. Penalties count a row's
    output tokens, so its whole history must be on the host (no pending tokens)."""

    def __init__(self, seed: int | None = None):
        self._seed = seed
        self._generators: dict[torch.device, torch.Generator] = {}

    def __call__(self, logits: torch.Tensor, rows: Sequence[SamplingRow]) -> SamplerOutput:
        return self.sample(logits, rows).to_host()

    @torch.inference_mode()
    def sample(self, logits: torch.Tensor, rows: Sequence[SamplingRow]) -> DeviceSamples:
        if logits.dim() != 2 or logits.shape[0] != len(rows):
            raise ValueError(f"logits must be [{len(rows)}, vocab], got {tuple(logits.shape)}")
        # One pass gives every row's logsumexp (the chosen token's raw logprob is logit - lse)
        # and the argmax; the full log_softmax is built only for rows that ask for top-k.
        argmax, logsumexp = argmax_logsumexp(logits)
        random_rows = [i for i, row in enumerate(rows) if not row.params.greedy]
        if random_rows or any(_changes_logits(row) for row in rows):
            work = logits.to(torch.float32, copy=True)
            apply_penalties(work, rows)
            mask_stop_tokens_before_min_tokens(work, rows)
            apply_token_constraints(work, [row.constraint for row in rows])
            token_ids = work.argmax(dim=-1)
        else:  # all greedy and unrestricted: argmax of the logits as they are
            work, token_ids = logits, argmax
        if random_rows and len(random_rows) == len(rows):
            token_ids = self._sample(work, rows)
        elif random_rows:
            index = to_device(random_rows, torch.int64, logits.device)
            sampled = self._sample(work.index_select(0, index), [rows[i] for i in random_rows])
            token_ids.index_copy_(0, index, sampled)
        chosen_logprobs = logits.gather(1, token_ids[:, None]).squeeze(1).float() - logsumexp
        top_logprobs = confidences = None
        if any(row.params.logprobs is not None or row.params.confidence_top_k > 0 for row in rows):
            raw_logprobs = logits.float() - logsumexp[:, None]
            top_logprobs = _top_logprobs(raw_logprobs, token_ids, rows)
            confidences = _confidences(raw_logprobs, rows)
        return DeviceSamples(token_ids, chosen_logprobs, top_logprobs, confidences)

    def _sample(self, logits: torch.Tensor, rows: Sequence[SamplingRow]) -> torch.Tensor:
        temperatures = _per_row([row.params.temperature for row in rows], logits)
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
        self, rows: Sequence[SamplingRow], vocab_size: int, device: torch.device
    ) -> torch.Tensor:
        noise = torch.empty(len(rows), vocab_size, device=device)
        unseeded = [i for i, row in enumerate(rows) if row.generator is None]
        if len(unseeded) == len(rows):
            noise.exponential_(generator=self._global_generator(device))
        elif unseeded:
            shared = torch.empty(len(unseeded), vocab_size, device=device)
            shared.exponential_(generator=self._global_generator(device))
            noise.index_copy_(0, to_device(unseeded, torch.int64, device), shared)
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


def _changes_logits(row: SamplingRow) -> bool:
    params = row.params
    if row.constraint is not None and row.constraint.active:
        return True
    return params.needs_penalties or (params.min_tokens > 0 and row.num_output_tokens < params.min_tokens)


def _per_row(values: list[float], like: torch.Tensor) -> torch.Tensor:
    """[len(values)] float tensor on like's device; a batch that agrees needs no copy at all."""
    first = values[0]
    if all(value == first for value in values):
        return like.new_full((len(values),), first)
    return to_device(values, like.dtype, like.device)


def _select_rows(tensor: torch.Tensor, rows: list[int]) -> torch.Tensor:
    """tensor[rows] for a sorted list of row indices, without a blocking index upload."""
    if len(rows) == tensor.shape[0]:
        return tensor
    return tensor.index_select(0, to_device(rows, torch.int64, tensor.device))


def apply_penalties(logits: torch.Tensor, rows: Sequence[SamplingRow]) -> None:
    """In place: repetition penalty (HF: over prompt + output), then frequency and presence
    penalties (OpenAI: over output counts)."""
    indices = [i for i, row in enumerate(rows) if row.params.needs_penalties]
    if not indices:
        return
    penalized = [rows[i] for i in indices]
    if any(row.num_pending_tokens for row in penalized):
        raise ValueError("penalties need every output token on the host")
    index = to_device(indices, torch.int64, logits.device)
    selected = logits.index_select(0, index)
    output_counts = _token_counts([row.output_token_ids for row in penalized], logits)
    repetition_values = [row.params.repetition_penalty for row in penalized]
    if any(value != 1.0 for value in repetition_values):
        repetition = _per_row(repetition_values, selected)[:, None]
        in_prompt = _token_counts([row.prompt_token_ids for row in penalized], logits) > 0
        seen = in_prompt | (output_counts > 0)
        scaled = torch.where(selected > 0, selected / repetition, selected * repetition)
        selected = torch.where(seen, scaled, selected)
    frequency = _per_row([row.params.frequency_penalty for row in penalized], selected)[:, None]
    presence = _per_row([row.params.presence_penalty for row in penalized], selected)[:, None]
    selected -= frequency * output_counts + presence * (output_counts > 0)
    logits.index_copy_(0, index, selected)


def _token_counts(sequences: Sequence[Sequence[int]], like: torch.Tensor) -> torch.Tensor:
    """[len(sequences), vocab] float counts of each token id per sequence."""
    counts = like.new_zeros(len(sequences), like.shape[1])
    lengths = [len(seq) for seq in sequences]
    total = sum(lengths)
    if total == 0:
        return counts
    device = like.device
    token_ids = to_device(list(itertools.chain.from_iterable(sequences)), torch.int64, device)
    row_ids = torch.repeat_interleave(
        torch.arange(len(sequences), device=device),
        to_device(lengths, torch.int64, device),
        output_size=total,
    )
    counts.index_put_((row_ids, token_ids), torch.ones_like(token_ids, dtype=counts.dtype), True)
    return counts


def mask_stop_tokens_before_min_tokens(logits: torch.Tensor, rows: Sequence[SamplingRow]) -> None:
    """In place: a row still short of min_tokens cannot pick a token that would end it."""
    row_ids: list[int] = []
    token_ids: list[int] = []
    vocab_size = logits.shape[1]
    for i, row in enumerate(rows):
        params = row.params
        if row.num_output_tokens >= params.min_tokens:
            continue
        enders = set(params.stop_token_ids or ())
        if not params.ignore_eos:
            enders |= row.eos_token_ids
        enders = {t for t in enders if t < vocab_size}
        row_ids.extend([i] * len(enders))
        token_ids.extend(enders)
    if row_ids:
        index = to_device([row_ids, token_ids], torch.int64, logits.device)
        logits[index[0], index[1]] = -math.inf


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
        k_index = to_device([min(k, vocab_size) - 1 for k in top_k], torch.int64, logits.device)
        kth_largest = sorted_logits.gather(1, k_index[:, None])
        logits.masked_fill_(logits < kth_largest, -math.inf)
        sorted_logits.masked_fill_(sorted_logits < kth_largest, -math.inf)
    if uses_top_p:
        sorted_probs = torch.softmax(sorted_logits, dim=-1)
        # Keep a token while the mass strictly above it is still short of top_p: the smallest
        # set reaching top_p. cummax undoes rounding dips, so the kept tokens form a prefix.
        mass_before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
        mass_before = torch.cummax(mass_before, dim=-1).values
        limits = _per_row(top_p, logits)[:, None]
        num_kept = (mass_before < limits).sum(dim=-1).clamp_min(1)
        cutoff = sorted_logits.gather(1, (num_kept - 1)[:, None])
        cutoff = torch.where(limits < 1.0, cutoff, torch.full_like(cutoff, -math.inf))
        logits.masked_fill_(logits < cutoff, -math.inf)


def apply_min_p(logits: torch.Tensor, rows: Sequence[SamplingRow]) -> None:
    """In place: drop tokens with p < min_p * p_max, compared in log space (no extra softmax)."""
    min_p = [row.params.min_p for row in rows]
    if not any(p > 0.0 for p in min_p):
        return
    log_min_p = _per_row([math.log(p) if p > 0 else -math.inf for p in min_p], logits)
    threshold = logits.max(dim=-1, keepdim=True).values + log_min_p[:, None]
    logits.masked_fill_(logits < threshold, -math.inf)


def _top_logprobs(
    raw_logprobs: torch.Tensor, token_ids: torch.Tensor, rows: Sequence[SamplingRow]
) -> tuple[list[int], list[int], list[torch.Tensor]] | None:
    wanted = [i for i, row in enumerate(rows) if row.params.logprobs is not None]
    if not wanted:
        return None
    top_ks = [rows[i].params.logprobs or 0 for i in wanted]
    tensors = position_logprob_tensors(
        _select_rows(raw_logprobs, wanted), _select_rows(token_ids, wanted), top_ks
    )
    return wanted, top_ks, tensors


def _confidences(
    raw_logprobs: torch.Tensor, rows: Sequence[SamplingRow]
) -> tuple[list[int], torch.Tensor] | None:
    wanted = [i for i, row in enumerate(rows) if row.params.confidence_top_k > 0]
    if not wanted:
        return None
    vocab_size = raw_logprobs.shape[1]
    ks = [min(rows[i].params.confidence_top_k, vocab_size) for i in wanted]
    top_values = _select_rows(raw_logprobs, wanted).topk(max(ks), dim=-1).values
    top_ks = _per_row([float(k) for k in ks], raw_logprobs)
    in_top_k = torch.arange(top_values.shape[1], device=top_values.device) < top_ks[:, None]
    sums = torch.where(in_top_k, top_values, torch.zeros_like(top_values)).sum(dim=-1)
    return wanted, -sums / top_ks
