"""Training data: task items as chat examples, tokenised, packed into fixed-length rows.

Each example is one user question and the assistant turn that answers it; only the assistant
turn is learned (prompt labels are -100). A share of examples (`probe_fraction`) are probes
instead: a thought cut at a random token and closed at once, where only the forced answer is
learned (see `encode_probe_example`). Examples are packed several to a row; position ids
restart at every example, which makes transformers build a block-diagonal causal mask, so an
example never attends to its neighbours and sees the same positions it will see when served.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from tokenizers import Tokenizer
from torch.utils.data import IterableDataset, get_worker_info

from ponder.tasks import DIFFICULTIES, FAMILIES, TaskItem, random_item
from ponder.tasks.paraphrase import paraphrase_item, small_arithmetic_item
from ponder.train.answer_work import working_answer_text
from ponder.train.chat_format import (
    BUDGET_CLOSE_TEXT,
    IM_END,
    PROBE_TEXT,
    THINK_START,
    answer_text,
    completion_text,
    prompt_text,
)
from ponder.train.config import TrainConfig

IGNORE_INDEX = -100
_POOL_SIZE = 32  # examples waiting to be packed; a larger pool wastes fewer pad tokens
_ENCODE_CHUNK = 64


@dataclass(frozen=True)
class EncodedExample:
    input_ids: list[int]
    labels: list[int]  # IGNORE_INDEX on the prompt


@dataclass(frozen=True)
class PackedRow:
    input_ids: list[int]
    labels: list[int]
    position_ids: list[int]


def example_texts(item: TaskItem, *, thinking: bool = True, working: bool = False) -> tuple[str, str]:
    """(prompt, completion) for one item; without thinking the answer comes straight away, with
    its working first where ``working`` (ponder.train.answer_work)."""
    if thinking:
        return prompt_text(item.question), completion_text(item.solution, item.answer)
    answer = working_answer_text(item.solution, item.answer) if working else answer_text(item.answer)
    return prompt_text(item.question, enable_thinking=False), answer + IM_END


def encode_examples(tokenizer: Tokenizer, pairs: list[tuple[str, str]]) -> list[EncodedExample]:
    """Prompt and completion are encoded apart, exactly as a server tokenises the prompt."""
    prompts = tokenizer.encode_batch([prompt for prompt, _ in pairs], add_special_tokens=False)
    completions = tokenizer.encode_batch([done for _, done in pairs], add_special_tokens=False)
    examples = []
    for prompt, completion in zip(prompts, completions, strict=True):
        examples.append(
            EncodedExample(
                input_ids=prompt.ids + completion.ids,
                labels=[IGNORE_INDEX] * len(prompt.ids) + completion.ids,
            )
        )
    return examples


def encode_probe_example(tokenizer: Tokenizer, item: TaskItem, rng: random.Random) -> EncodedExample:
    """The worked solution cut after a random token and closed by `PROBE_TEXT`, exactly as an
    answer-stability probe closes a live thought. Only the forced answer is learned: the result
    once the thought has stated it (its whole `Result: X` line), an empty box before that. So a
    probe reads what the thought has settled, not the number it happens to be computing."""
    prompt_ids = tokenizer.encode(prompt_text(item.question), add_special_tokens=False).ids
    completion = completion_text(item.solution, item.answer)
    encoding = tokenizer.encode(completion, add_special_tokens=False)
    thought_chars = len(f"{THINK_START}\n{item.solution}")
    thought_tokens = sum(end <= thought_chars for _, end in encoding.offsets)
    cut = rng.randint(1, thought_tokens)  # the served thought's own tokens, as the model wrote them
    seen = completion[: encoding.offsets[cut - 1][1]]
    answer = item.answer if f"Result: {item.answer}\n" in seen else ""
    probe_ids = tokenizer.encode(PROBE_TEXT, add_special_tokens=False).ids
    answer_ids = tokenizer.encode(f"{answer}}}{IM_END}", add_special_tokens=False).ids
    context = prompt_ids + encoding.ids[:cut] + probe_ids
    return EncodedExample(input_ids=context + answer_ids, labels=[IGNORE_INDEX] * len(context) + answer_ids)


def encode_budget_cut_example(
    tokenizer: Tokenizer, item: TaskItem, rng: random.Random, *, working: bool = False
) -> EncodedExample:
    """A thought cut by a thinking budget: the worked solution cut after a random token (half the
    time within its first 64 tokens, where small budgets cut), closed by BUDGET_CLOSE_TEXT as the
    engine closes it, then the gold answer. Only the answer is learned: a budgeted thought must
    still end in a real answer, never an empty box (which is what an answer probe gets). With
    ``working`` the answer first works the problem out (unless the cut thought had its result)."""
    prompt_ids = tokenizer.encode(prompt_text(item.question), add_special_tokens=False).ids
    thought_text = f"{THINK_START}\n{item.solution}"
    encoding = tokenizer.encode(thought_text, add_special_tokens=False)
    thought = encoding.ids
    limit = len(thought) if rng.random() < 0.5 else min(len(thought), 64)
    cut = rng.randint(1, limit)
    close_ids = tokenizer.encode(BUDGET_CLOSE_TEXT, add_special_tokens=False).ids
    if working:
        seen = thought_text[: encoding.offsets[cut - 1][1]]
        answer = working_answer_text(item.solution, item.answer, seen_thought=seen)
    else:
        answer = answer_text(item.answer)
    answer_ids = tokenizer.encode(answer + IM_END, add_special_tokens=False).ids
    context = prompt_ids + thought[:cut] + close_ids
    return EncodedExample(input_ids=context + answer_ids, labels=[IGNORE_INDEX] * len(context) + answer_ids)


def shortcut(config: TrainConfig, item: TaskItem) -> bool:
    """Whether this item may be answered without (all of) its thought in training."""
    return item.difficulty in config.shortcut_difficulties


class MixSampler:
    """Draws (family, difficulty) pairs: family weight x difficulty weight x any per-cell factor."""

    def __init__(
        self,
        family_weights: dict[str, float],
        difficulty_weights: dict[str, float],
        cell_weights: dict[str, float] | None = None,
    ):
        families = family_weights or {family: 1.0 for family in FAMILIES}
        cells = cell_weights or {}
        weighted = [
            (
                (family, difficulty),
                families.get(family, 0)
                * difficulty_weights.get(difficulty, 0)
                * cells.get(f"{family}/{difficulty}", 1.0),
            )
            for family in FAMILIES
            for difficulty in DIFFICULTIES
        ]
        self.cells = [cell for cell, weight in weighted if weight > 0]
        self.weights = [weight for _, weight in weighted if weight > 0]

    def draw(self, rng: random.Random) -> tuple[str, str]:
        return rng.choices(self.cells, self.weights)[0]


def example_stream(
    config: TrainConfig, tokenizer: Tokenizer, rng: random.Random, *, split: str = "train"
) -> Iterator[EncodedExample]:
    """An endless stream of encoded examples drawn from the configured mix."""
    sampler = MixSampler(config.family_weights, config.difficulty_weights, config.cell_weights)
    while True:
        pairs = []
        probes = []
        for _ in range(_ENCODE_CHUNK):
            family, difficulty = sampler.draw(rng)
            item = random_item(family, difficulty, rng, split=split)
            # (no draw at all for a share that is 0, so such a run's data stream stays what it was)
            if config.plain_fraction and rng.random() < config.plain_fraction:
                item = small_arithmetic_item(rng, split=split)
            if config.paraphrase_fraction and rng.random() < config.paraphrase_fraction:
                item = paraphrase_item(item, "train", rng)
            if config.probe_fraction and rng.random() < config.probe_fraction:
                probes.append(encode_probe_example(tokenizer, item, rng))
            elif (
                config.budget_cut_fraction
                and shortcut(config, item)
                and rng.random() < config.budget_cut_fraction
            ):
                probes.append(encode_budget_cut_example(tokenizer, item, rng, working=config.answer_working))
            else:
                direct = rng.random() < config.no_think_fraction
                thinking = not (direct and shortcut(config, item))
                pairs.append(example_texts(item, thinking=thinking, working=config.answer_working))
        yield from encode_examples(tokenizer, pairs)
        yield from probes


def pack_rows(examples: Iterator[EncodedExample], seq_len: int, pad_id: int) -> Iterator[PackedRow]:
    """Fill rows of ``seq_len`` tokens first-fit from a small pool; pad what is left over."""
    pool: list[EncodedExample] = []
    while True:
        while len(pool) < _POOL_SIZE:
            example = next(examples)
            if len(example.input_ids) <= seq_len:  # longer ones cannot be learned whole: skip
                pool.append(example)
        input_ids: list[int] = []
        labels: list[int] = []
        position_ids: list[int] = []
        index = 0
        while index < len(pool):
            example = pool[index]
            if len(input_ids) + len(example.input_ids) > seq_len:
                index += 1
                continue
            input_ids += example.input_ids
            labels += example.labels
            position_ids += range(len(example.input_ids))
            pool.pop(index)
        padding = seq_len - len(input_ids)
        yield PackedRow(
            input_ids=input_ids + [pad_id] * padding,
            labels=labels + [IGNORE_INDEX] * padding,
            position_ids=position_ids + list(range(padding)),
        )


class PackedTaskDataset(IterableDataset):
    """Endless packed rows; each DataLoader worker draws its own stream from (seed, key, worker)."""

    def __init__(
        self, config: TrainConfig, tokenizer_file: str, *, stream_key: int = 0, split: str = "train"
    ):
        super().__init__()
        self.config = config
        self.tokenizer_file = tokenizer_file
        self.stream_key = stream_key  # the step a run resumes from, so resumed data is fresh
        self.split = split

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        worker = get_worker_info()
        worker_id = worker.id if worker is not None else 0
        rng = random.Random(f"{self.config.seed}|{self.stream_key}|{self.split}|{worker_id}")
        tokenizer = Tokenizer.from_file(self.tokenizer_file)
        pad_id = tokenizer.token_to_id("<|endoftext|>")
        stream = example_stream(self.config, tokenizer, rng, split=self.split)
        for row in pack_rows(stream, self.config.seq_len, pad_id):
            yield {
                "input_ids": torch.tensor(row.input_ids, dtype=torch.long),
                "labels": torch.tensor(row.labels, dtype=torch.long),
                "position_ids": torch.tensor(row.position_ids, dtype=torch.long),
            }


def tokenizer_corpus(items_per_cell: int, seed: int) -> Iterator[str]:
    """Texts to learn the BPE vocabulary from: questions, worked solutions, answers, roles."""
    rng = random.Random(f"tokenizer|{seed}")
    yield from ("user", "assistant", "system")
    for family in FAMILIES:
        for difficulty in DIFFICULTIES:
            for _ in range(items_per_cell):
                item = random_item(family, difficulty, rng, split="train")
                yield item.question
                yield item.solution
                yield answer_text(item.answer)
