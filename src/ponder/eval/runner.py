"""Runs each strategy over the held-out task items and records per-item outcomes and engine work."""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from ponder.engine.sampling_params import SamplingParams
from ponder.reasoning.controller import OfflineReasoner
from ponder.reasoning.specs import StrategySpec
from ponder.reasoning.strategies import ReasoningPrompt
from ponder.tasks import TaskItem, generate
from ponder.tasks.paraphrase import paraphrased_test_items

if TYPE_CHECKING:
    from ponder.engine.llm_engine import LLMEngine


@dataclass(frozen=True)
class EvalConfig:
    families: tuple[str, ...]
    difficulties: tuple[str, ...]
    limit: int
    max_tokens: int = 1536
    temperature: float = 0.8
    top_p: float = 1.0
    min_p: float = 0.0
    top_k: int = -1  # -1: off
    item_seed: int = 0
    sample_seed: int = 0
    concurrency: int = 8
    verifier: str | None = None  # "oracle": the task's own checker (an upper bound, not a method)
    progress: bool = True
    phrasing: str = "canonical"  # "paraphrase": the questions in held-out phrasings (tasks.paraphrase)
    enable_thinking: bool = True  # False: the chat template skips the thought (reasoning_effort none)


@dataclass
class ItemResult:
    family: str
    difficulty: str
    item_id: str
    gold: str
    answer: str | None
    correct: bool
    reasoning_tokens: int
    answer_tokens: int
    probe_tokens: int
    generated_tokens: int
    num_branches: int
    num_stopped_branches: int
    latency_s: float
    finish_reason: str
    # Every branch's extracted answer (None: none): how diverse the samples are, and whether any
    # branch was right (pass@n, the ceiling of any vote over them).
    branch_answers: list[str | None] = field(default_factory=list)
    any_branch_correct: bool = False
    # Per branch, in the same order: enough to replay other vote rules offline (weights, filters,
    # stopping points) on a recorded run without generating again.
    branch_confidences: list[float | None] = field(default_factory=list)  # lowest group confidence
    branch_mean_logprobs: list[float] = field(default_factory=list)
    branch_tokens: list[int] = field(default_factory=list)
    branch_stopped: list[bool] = field(default_factory=list)
    wave_sizes: list[int] | None = None  # `confidence`: branches started per wave after the warm-up


@dataclass
class StrategyEval:
    label: str
    spec: dict
    items: list[ItemResult]
    wall_time_s: float
    engine: dict[str, int] = field(default_factory=dict)  # engine counters over this strategy


def load_items(config: EvalConfig) -> list[TaskItem]:
    if config.phrasing == "paraphrase":
        return [
            item
            for family in config.families
            for difficulty in config.difficulties
            for item in paraphrased_test_items(family, difficulty, config.limit, seed=config.item_seed)
        ]
    return [
        item
        for family in config.families
        for difficulty in config.difficulties
        for item in generate(family, difficulty, config.limit, split="test", seed=config.item_seed)
    ]


def evaluate(
    engine: LLMEngine,
    strategies: list[tuple[str, StrategySpec]],
    config: EvalConfig,
    *,
    models: dict[str, LLMEngine] | None = None,
) -> list[StrategyEval]:
    items = load_items(config)
    reasoner = OfflineReasoner(engine, models=models)
    _warm_up(reasoner)
    results = []
    for label, spec in strategies:
        # Every strategy starts cold, so no strategy's prefill is paid by the one before it.
        engine.reset_prefix_cache()
        before = engine.stats()
        start = time.perf_counter()
        outcomes = asyncio.run(_run_items(reasoner, items, spec, config, label))
        wall = time.perf_counter() - start
        after = engine.stats()
        counters = {
            name: getattr(after, name) - getattr(before, name)
            for name in (
                "prompt_tokens_computed",
                "generation_tokens",
                "prefix_cache_queries",
                "prefix_cache_hits",
                "num_preemptions",
            )
        }
        results.append(StrategyEval(label, spec.to_dict(), outcomes, wall, counters))
    return results


def item_params(config: EvalConfig, index: int) -> SamplingParams:
    return SamplingParams(
        temperature=config.temperature,
        top_p=config.top_p,
        min_p=config.min_p,
        top_k=config.top_k,
        max_tokens=config.max_tokens,
        seed=config.sample_seed + index,
    )


async def _run_items(
    reasoner: OfflineReasoner,
    items: list[TaskItem],
    spec: StrategySpec,
    config: EvalConfig,
    label: str,
) -> list[ItemResult]:
    slots = asyncio.Semaphore(max(1, config.concurrency))
    progress = tqdm(total=len(items), desc=label, disable=not config.progress, file=sys.stderr)

    async def one(index: int, item: TaskItem) -> ItemResult:
        async with slots:
            start = time.perf_counter()
            verifier = item.check if config.verifier == "oracle" else None
            problem = ReasoningPrompt(
                messages=({"role": "user", "content": item.question},),
                template_kwargs={} if config.enable_thinking else {"enable_thinking": False},
            )
            result = await reasoner.run(problem, item_params(config, index), spec, verifier=verifier)
            latency = time.perf_counter() - start
        progress.update(1)
        usage = result.usage
        return ItemResult(
            family=item.family,
            difficulty=item.difficulty,
            item_id=item.id,
            gold=item.answer,
            answer=result.answer,
            correct=item.check(result.answer),
            reasoning_tokens=usage.reasoning_tokens,
            answer_tokens=usage.answer_tokens,
            probe_tokens=usage.probe_tokens,
            generated_tokens=usage.generated_tokens,
            num_branches=usage.num_branches,
            num_stopped_branches=usage.num_stopped_branches,
            latency_s=latency,
            finish_reason=result.finish_reason,
            branch_answers=[branch.answer for branch in result.branches],
            any_branch_correct=any(item.check(branch.answer) for branch in result.branches),
            branch_confidences=[branch.confidence for branch in result.branches],
            branch_mean_logprobs=[branch.mean_logprob for branch in result.branches],
            branch_tokens=[branch.num_tokens for branch in result.branches],
            branch_stopped=[branch.stopped for branch in result.branches],
            wave_sizes=result.details.get("wave_sizes"),
        )

    try:
        return list(await asyncio.gather(*(one(i, item) for i, item in enumerate(items))))
    finally:
        progress.close()


def _warm_up(reasoner: OfflineReasoner) -> None:
    """One short generation first, so one-time costs (allocations, lazy init) time no strategy."""
    params = SamplingParams(temperature=0.0, max_tokens=4)
    reasoner.run_all([[{"role": "user", "content": "What is 1 + 1?"}]], params, "greedy")
