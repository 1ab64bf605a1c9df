"""The candidate against the served model on held-out items: greedy accuracy, paired difference
with a 95% interval, tokens and empty answers, as one table (ponder flywheel eval)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from ponder.engine.sampling_params import SamplingParams
from ponder.flywheel.export import read_jsonl
from ponder.tasks import TaskItem
from ponder.tasks.answers import answers_equal, extract_answer


@dataclass(frozen=True)
class HeldOutItem:
    messages: list[dict]  # the conversation up to the answer
    answer: str  # the reference: a task's gold answer, or the curated label


@dataclass
class ModelScore:
    name: str
    path: str
    correct: list[bool]
    completion_tokens: list[int]
    empty: int  # replies with no final answer

    @property
    def accuracy(self) -> float:
        return sum(self.correct) / len(self.correct) if self.correct else 0.0


def items_from_tasks(items: Sequence[TaskItem]) -> list[HeldOutItem]:
    return [HeldOutItem([{"role": "user", "content": item.question}], item.answer) for item in items]


def items_from_jsonl(path: str) -> list[HeldOutItem]:
    """The eval split `ponder flywheel curate` wrote: the conversation and its curated answer."""
    held = []
    for example in read_jsonl(path):
        answer = (example.get("metadata") or {}).get("answer")
        if answer:
            held.append(HeldOutItem(example["messages"][:-1], str(answer)))
    return held


def score_model(
    name: str, path: str, items: Sequence[HeldOutItem], *, max_tokens: int = 512, **engine_kwargs
) -> ModelScore:
    """Greedy answers of the model at `path` to every item, checked against the references."""
    from ponder.llm import LLM

    llm = LLM(path, **engine_kwargs)
    params = SamplingParams(temperature=0.0, max_tokens=max_tokens)
    outputs = llm.chat([list(item.messages) for item in items], params)
    del llm  # the KV pool goes before the next model loads
    correct, tokens, empty = [], [], 0
    for item, output in zip(items, outputs):
        completion = output.outputs[0]
        answer = extract_answer(completion.content, completion.reasoning)
        empty += not answer
        correct.append(bool(answer) and answers_equal(answer, item.answer))
        tokens.append(len(completion.token_ids))
    return ModelScore(name, path, correct, tokens, empty)


def paired_difference(candidate: ModelScore, current: ModelScore) -> tuple[float, float, float]:
    """Mean of candidate - current per item, and its 95% normal interval."""
    diffs = [float(a) - float(b) for a, b in zip(candidate.correct, current.correct)]
    mean = statistics.fmean(diffs) if diffs else 0.0
    spread = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else 0.0
    return mean, mean - 1.96 * spread, mean + 1.96 * spread


def comparison_rows(current: ModelScore, candidate: ModelScore) -> list[dict]:
    rows = []
    for score in (current, candidate):
        rows.append(
            {
                "model": score.name,
                "path": score.path,
                "items": len(score.correct),
                "accuracy": score.accuracy,
                "mean_tokens": statistics.fmean(score.completion_tokens) if score.completion_tokens else 0.0,
                "no_answer": score.empty,
            }
        )
    return rows


def verdict(current: ModelScore, candidate: ModelScore) -> str:
    mean, low, high = paired_difference(candidate, current)
    better = "better" if low > 0 else "worse" if high < 0 else "not significantly different"
    interval = f"95% CI {100 * low:+.1f} .. {100 * high:+.1f}"
    return f"candidate - current: {100 * mean:+.1f} points ({interval}): {better}"
