"""Test-time scaling strategies by type name; each is `async def run(StrategyRun) -> StrategyResult`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ponder.reasoning.strategies.answer_stability import run_answer_stability
from ponder.reasoning.strategies.base import (
    BranchRecord,
    ReasoningPrompt,
    StrategyResult,
    StrategyRun,
    TokenUsage,
    Verifier,
)
from ponder.reasoning.strategies.best_of_n import run_best_of_n
from ponder.reasoning.strategies.budget import run_budget
from ponder.reasoning.strategies.confidence_stop import run_confidence
from ponder.reasoning.strategies.ensemble import run_cascade, run_ensemble
from ponder.reasoning.strategies.refine import run_refine
from ponder.reasoning.strategies.self_consistency import run_self_consistency
from ponder.reasoning.strategies.single import run_single

Runner = Callable[[StrategyRun], Awaitable[StrategyResult]]

RUNNERS: dict[str, Runner] = {
    "greedy": run_single,
    "single": run_single,
    "self_consistency": run_self_consistency,
    "best_of_n": run_best_of_n,
    "confidence": run_confidence,
    "answer_stability": run_answer_stability,
    "budget": run_budget,
    "refine": run_refine,
    "ensemble": run_ensemble,
    "cascade": run_cascade,
}

__all__ = [
    "RUNNERS",
    "BranchRecord",
    "ReasoningPrompt",
    "Runner",
    "StrategyResult",
    "StrategyRun",
    "TokenUsage",
    "Verifier",
]
