"""Workloads: random prompts, ShareGPT and JSONL files, and ponder's built-in reasoning tasks."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ponder.bench.config import Workload
from ponder.bench.errors import BenchConfigError, TaskSourceUnavailableError
from ponder.bench.tokens import TextTokenizer

DEFAULT_OUTPUT_LEN = 256
DEFAULT_REASONING_OUTPUT_LEN = 1024
# ShareGPT turns this short are greetings or noise; vLLM drops them too.
MIN_SHAREGPT_TOKENS = 4

_FILLER_WORDS = (
    "time year people way day thing world school state family student group country problem "
    "hand part place case week company system program question work number night point home "
    "water room area money story fact month lot right study book eye job word business issue "
    "side kind head house service friend power hour game line end member law car city name "
    "team minute idea body information back parent face level office door health person art "
    "history party result change morning reason research moment air teacher force education"
).split()


@dataclass(frozen=True)
class BenchPrompt:
    """One request to send: the text, its (estimated) length, and the answer check if any."""

    text: str
    prompt_len: int
    output_len: int
    # Given the answer text (after the thinking), says whether it is right.
    check: Callable[[str], bool] | None = None


@dataclass(frozen=True)
class TaskSource:
    """The two functions the reasoning workload needs; injectable so tests need no ponder.tasks."""

    generate: Callable[..., Sequence[Any]]
    extract_answer: Callable[[str], str | None]


def count_tokens(text: str, tokenizer: TextTokenizer | None) -> int:
    """Exact with a tokenizer; otherwise whitespace words, a rough stand-in for tokens."""
    return tokenizer.count(text) if tokenizer else len(text.split())


def load_prompts(
    workload: Workload,
    tokenizer: TextTokenizer | None,
    task_source: TaskSource | None = None,
) -> list[BenchPrompt]:
    """Build the prompt pool; runs longer than the pool reuse it from the start."""
    if workload.dataset == "random":
        return random_prompts(workload, tokenizer)
    if workload.dataset == "sharegpt":
        return sharegpt_prompts(workload, tokenizer)
    if workload.dataset == "jsonl":
        return jsonl_prompts(workload, tokenizer)
    if workload.dataset == "multi-turn":
        return multi_turn_prompts(workload, tokenizer)
    return reasoning_task_prompts(workload, tokenizer, task_source or import_task_source())


def random_prompts(workload: Workload, tokenizer: TextTokenizer | None) -> list[BenchPrompt]:
    rng = np.random.default_rng(workload.seed)
    input_lens = _sample_lengths(rng, workload.random_input_len, workload, workload.num_prompts)
    output_lens = _sample_lengths(rng, workload.random_output_len, workload, workload.num_prompts)
    prefix_len = round(workload.random_input_len * workload.random_prefix_ratio)
    shared_prefix = _random_text(rng, prefix_len, tokenizer)
    prompts = []
    for input_len, output_len in zip(input_lens, output_lens, strict=True):
        suffix = _random_text(rng, max(int(input_len) - prefix_len, 0), tokenizer)
        text = " ".join(part for part in (shared_prefix, suffix) if part)
        prompts.append(BenchPrompt(text, count_tokens(text, tokenizer), int(output_len)))
    return prompts


def multi_turn_prompts(workload: Workload, tokenizer: TextTokenizer | None) -> list[BenchPrompt]:
    """Conversations of --num-turns turns under one shared system prompt (--random-prefix-ratio of
    --random-input-len; half when unset); each turn adds --random-input-len new words to the
    conversation so far, so turn k's prompt extends turn k-1's: the prefix reuse a KV-aware router
    and a prefix cache should exploit. Sent turn by turn across conversations, so a conversation's
    next turn comes after its previous one. --first-turn-len gives each conversation a longer
    first message (a document, a code file): the per-conversation history only one replica need
    hold, unlike the system prompt every replica caches."""
    rng = np.random.default_rng(workload.seed)
    ratio = workload.random_prefix_ratio or 0.5
    system = _random_text(rng, round(workload.random_input_len * ratio), tokenizer)
    num_conversations = -(-workload.num_prompts // workload.num_turns)
    histories = [[system] for _ in range(num_conversations)]
    prompts = []
    for turn in range(workload.num_turns):
        user_len = (
            (workload.first_turn_len or workload.random_input_len) if turn == 0 else workload.random_input_len
        )
        for history in histories:
            if len(prompts) == workload.num_prompts:
                break
            history.append(_random_text(rng, user_len, tokenizer))
            text = " ".join(history)
            prompts.append(BenchPrompt(text, count_tokens(text, tokenizer), workload.random_output_len))
            # the reply becomes part of the next turn's prompt, as a chat client resends it
            history.append(_random_text(rng, workload.random_output_len, tokenizer))
    return prompts


def _sample_lengths(rng: np.random.Generator, mean_len: int, workload: Workload, n: int) -> np.ndarray:
    """Uniform in [len*(1-r), len*(1+r)], as vLLM's random dataset."""
    low = max(int(mean_len * (1 - workload.random_range_ratio)), 1)
    high = max(int(mean_len * (1 + workload.random_range_ratio)), low)
    return rng.integers(low, high + 1, size=n)


def _random_text(rng: np.random.Generator, num_tokens: int, tokenizer: TextTokenizer | None) -> str:
    if num_tokens <= 0:
        return ""
    words = " ".join(rng.choice(_FILLER_WORDS, size=num_tokens))
    return tokenizer.truncate(words, num_tokens) if tokenizer else words


def sharegpt_prompts(workload: Workload, tokenizer: TextTokenizer | None) -> list[BenchPrompt]:
    """First human turn as the prompt; the first reply's length as max_tokens (or --output-len)."""
    path = Path(workload.dataset_path or "")
    entries = _read_json(path)
    if not isinstance(entries, list):
        raise BenchConfigError(
            f"{path}: a ShareGPT file is a JSON list of {{'conversations': [...]}}",
            "--dataset-path",
        )
    order = np.random.default_rng(workload.seed).permutation(len(entries))
    prompts: list[BenchPrompt] = []
    for index in order:
        turns = entries[index].get("conversations") or entries[index].get("conversation") or []
        if len(turns) < 2 or not isinstance(turns[0], dict) or not isinstance(turns[1], dict):
            continue
        text, reply = str(turns[0].get("value", "")), str(turns[1].get("value", ""))
        prompt_len, reply_len = count_tokens(text, tokenizer), count_tokens(reply, tokenizer)
        if prompt_len < MIN_SHAREGPT_TOKENS or reply_len < MIN_SHAREGPT_TOKENS:
            continue
        prompts.append(BenchPrompt(text, prompt_len, workload.output_len or reply_len))
        if len(prompts) == workload.num_prompts:
            break
    if not prompts:
        raise BenchConfigError(f"{path}: no usable conversation (two turns, 4+ tokens each)")
    return prompts


def jsonl_prompts(workload: Workload, tokenizer: TextTokenizer | None) -> list[BenchPrompt]:
    """One JSON object a line: {"prompt": str, "max_tokens": int (optional)}."""
    path = Path(workload.dataset_path or "")
    prompts = []
    for line_number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BenchConfigError(f"{path}:{line_number}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("prompt"), str):
            raise BenchConfigError(f"{path}:{line_number}: needs a string field 'prompt'")
        output_len = workload.output_len or int(row.get("max_tokens") or DEFAULT_OUTPUT_LEN)
        prompts.append(BenchPrompt(row["prompt"], count_tokens(row["prompt"], tokenizer), output_len))
    if not prompts:
        raise BenchConfigError(f"{path}: no prompts in the file", "--dataset-path")
    return prompts[: workload.num_prompts]


def import_task_source() -> TaskSource:
    """The built-in tasks, imported only when asked for: bench must run without them."""
    try:
        from ponder.tasks import generate
        from ponder.tasks.answers import extract_answer
    except ImportError as exc:
        raise TaskSourceUnavailableError(
            "--dataset reasoning needs ponder.tasks.generate and "
            f"ponder.tasks.answers.extract_answer, which cannot be imported here ({exc}); "
            "use --dataset random, sharegpt or jsonl instead"
        ) from exc
    return TaskSource(generate=generate, extract_answer=extract_answer)


def reasoning_task_prompts(
    workload: Workload, tokenizer: TextTokenizer | None, source: TaskSource
) -> list[BenchPrompt]:
    try:
        items = source.generate(
            workload.task_family,
            workload.task_difficulty,
            workload.num_prompts,
            split="test",
            seed=workload.seed,
        )
    except ValueError as exc:  # ponder.tasks names the valid families and difficulties
        raise BenchConfigError(f"--task-family/--task-difficulty: {exc}", "--task-family") from exc
    output_len = workload.output_len or DEFAULT_REASONING_OUTPUT_LEN
    return [
        BenchPrompt(
            item.question,
            count_tokens(item.question, tokenizer),
            output_len,
            check=_answer_checker(item, source.extract_answer),
        )
        for item in items
    ]


def _answer_checker(item: Any, extract_answer: Callable[[str], str | None]) -> Callable[[str], bool]:
    def check(answer_text: str) -> bool:
        extracted = extract_answer(answer_text)
        return bool(item.check(extracted if extracted is not None else answer_text))

    return check


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BenchConfigError(f"--dataset-path: cannot read {path}: {exc.strerror}") from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise BenchConfigError(f"{path}: not valid JSON ({exc})", "--dataset-path") from None
