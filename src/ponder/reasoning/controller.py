"""Runs a strategy: on the server's AsyncEngine (`run_strategy`) or offline on LLMEngines
(`OfflineReasoner`, behind `LLM.reason` and `ponder eval`)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ponder.engine.sampling_params import SamplingParams
from ponder.errors import InvalidRequestError
from ponder.reasoning.inline_engine import InlineEngine
from ponder.reasoning.progress import StrategyProgress
from ponder.reasoning.reward_model import RewardModels
from ponder.reasoning.session import AsyncEngineSession, EngineSession, StreamingEngine
from ponder.reasoning.spec_parser import parse_strategy_spec
from ponder.reasoning.specs import StrategySpec
from ponder.reasoning.strategies import RUNNERS, ReasoningPrompt, StrategyResult, StrategyRun, Verifier
from ponder.reasoning.strategies.base import RewardScorer, check_sampling

if TYPE_CHECKING:
    from ponder.engine.llm_engine import LLMEngine

PromptLike = ReasoningPrompt | str | Sequence[int] | Sequence[Mapping[str, Any]] | Mapping[str, Any]
SpecLike = StrategySpec | Mapping[str, Any] | str  # parsed by parse_strategy_spec


def as_reasoning_prompt(prompt: PromptLike, *, chat: bool = True) -> ReasoningPrompt:
    """A string (a user message when chat, else raw text), messages, token ids, or an engine
    prompt dict ({"prompt": ...} / {"prompt_token_ids": ...}, optionally with "messages" and
    the "template_kwargs" they were rendered with)."""
    if isinstance(prompt, ReasoningPrompt):
        return prompt
    if isinstance(prompt, str):
        if chat:
            return ReasoningPrompt(messages=({"role": "user", "content": prompt},))
        return ReasoningPrompt(text=prompt)
    if isinstance(prompt, Mapping):
        token_ids = prompt.get("prompt_token_ids")
        messages = prompt.get("messages")
        return ReasoningPrompt(
            messages=tuple(messages) if messages is not None else None,
            text=prompt.get("prompt"),
            token_ids=tuple(token_ids) if token_ids is not None else None,
            template_kwargs=dict(prompt.get("template_kwargs") or {}),
        )
    if isinstance(prompt, Sequence) and prompt and all(isinstance(m, Mapping) for m in prompt):
        return ReasoningPrompt(messages=tuple(prompt))
    if isinstance(prompt, Sequence) and prompt and all(isinstance(t, int) for t in prompt):
        return ReasoningPrompt(token_ids=tuple(prompt))
    raise InvalidRequestError(
        "a prompt must be a string, a list of messages, a list of token ids or a prompt dict",
        param="prompt",
    )


def check_strategy_params(spec: StrategySpec, params: SamplingParams) -> None:
    """Checks that need the request's sampling parameters; the server calls it before starting."""
    check_sampling(spec, params)
    if params.n != 1:
        raise InvalidRequestError(
            "n must be 1 with a reasoning_strategy: the strategy decides how many branches run",
            param="n",
        )


async def run_on_sessions(
    session: EngineSession,
    prompt: ReasoningPrompt,
    params: SamplingParams,
    spec: StrategySpec,
    *,
    models: Mapping[str, EngineSession] | None = None,
    verifier: Verifier | None = None,
    reward_models: RewardScorer | None = None,
    progress: StrategyProgress | None = None,
) -> StrategyResult:
    """The one place a strategy runs: both entry points below come here with a parsed spec."""
    check_strategy_params(spec, params)
    run = StrategyRun(
        session=session,
        prompt=prompt,
        params=params,
        spec=spec,
        models=dict(models or {}),
        verifier=verifier,
        reward_scorer=reward_models,
    )
    if progress is not None:
        progress.attach(run.sessions)
    try:
        return await RUNNERS[spec.type](run)
    finally:
        for each in run.sessions:
            each.close()  # whatever still runs (a failed or cancelled run) frees its KV now


async def run_strategy(
    engine: StreamingEngine,
    prompt: PromptLike,
    params: SamplingParams,
    spec: SpecLike,
    *,
    models: Mapping[str, StreamingEngine] | None = None,
    reward_models: RewardScorer | None = None,
    verifier: Verifier | None = None,
    name: str = "default",
    progress: StrategyProgress | None = None,
) -> StrategyResult:
    """The server's entry point: one strategy run for one prompt on a shared AsyncEngine.

    `prompt` is what the server already rendered (a ReasoningPrompt, or {"prompt_token_ids":
    [...]}; for ensembles over models with other tokenizers it carries the messages). `models`
    names other hosted engines for ensemble/cascade; `name` is the main engine's own name there
    (besides "default"). Raises InvalidRequestError (param "reasoning_strategy.*",
    "temperature" or "n") before any engine work when the request is invalid; cancelling the
    awaiting task aborts every request of the run. `progress`, if given, can be polled for a
    snapshot of the run while it goes on.
    """
    others = {name: AsyncEngineSession(each, name) for name, each in (models or {}).items()}
    return await run_on_sessions(
        AsyncEngineSession(engine, name),
        as_reasoning_prompt(prompt, chat=False),
        params,
        parse_strategy_spec(spec),
        models=others,
        verifier=verifier,
        reward_models=reward_models,
        progress=progress,
    )


class OfflineReasoner:
    """Runs strategies on LLMEngines in this thread; many prompts at once share the engine's
    batches, and every run is deterministic for seeded parameters."""

    def __init__(
        self,
        engine: LLMEngine,
        *,
        models: Mapping[str, LLMEngine] | None = None,
        reward_models: RewardScorer | None = None,
    ):
        self.inline = InlineEngine(engine)
        self.models = {name: InlineEngine(each, name) for name, each in (models or {}).items()}
        self.reward_models = reward_models or RewardModels(allow_paths=True)

    async def run(
        self,
        prompt: ReasoningPrompt,
        params: SamplingParams,
        spec: StrategySpec,
        *,
        verifier: Verifier | None = None,
    ) -> StrategyResult:
        session = self.inline.session()
        others = {name: inline.session() for name, inline in self.models.items()}
        try:
            return await run_on_sessions(
                session,
                prompt,
                params,
                spec,
                models=others,
                verifier=verifier,
                reward_models=self.reward_models,
            )
        finally:
            self.inline.release(session)
            for name, other in others.items():
                self.models[name].release(other)

    def run_all(
        self,
        prompts: Sequence[PromptLike],
        params: SamplingParams,
        spec: SpecLike,
        *,
        verifier: Verifier | None = None,
        chat: bool = True,
        concurrency: int = 64,
    ) -> list[StrategyResult]:
        """Results in prompt order; at most `concurrency` problems in flight at once. A string
        prompt is a user message when `chat`, else raw text."""
        parsed = parse_strategy_spec(spec)  # invalid specs and prompts fail before anything runs
        problems = [as_reasoning_prompt(prompt, chat=chat) for prompt in prompts]

        async def run_all() -> list[StrategyResult]:
            slots = asyncio.Semaphore(max(1, concurrency))

            async def one(prompt: ReasoningPrompt) -> StrategyResult:
                async with slots:
                    return await self.run(prompt, params, parsed, verifier=verifier)

            return list(await asyncio.gather(*(one(prompt) for prompt in problems)))

        return asyncio.run(run_all())
