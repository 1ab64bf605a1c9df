"""The `reasoning_strategy` field of /v1/chat/completions, /v1/completions and /v1/responses:
check the spec against the request and the hosted models, then run it on the requested model's
engine through ponder.reasoning.controller (one run per prompt; its branches share the prompt's
KV), with a progress view of each run for streamed responses."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ponder.errors import InvalidRequestError
from ponder.reasoning.controller import check_strategy_params, run_strategy
from ponder.reasoning.progress import ProgressSnapshot, StrategyProgress
from ponder.reasoning.spec_parser import parse_strategy_spec
from ponder.reasoning.specs import PARAM_PREFIX, StrategySpec

if TYPE_CHECKING:
    from ponder.engine.sampling_params import SamplingParams
    from ponder.reasoning.reward_model import RewardModels
    from ponder.reasoning.strategies import StrategyResult
    from ponder.server.chat import ChatCompletions
    from ponder.server.completions import Completions
    from ponder.server.generation import EngineClient, ServingContext, Ticket
    from ponder.server.hosting import ModelRouter
    from ponder.server.metrics import ModelMetrics
    from ponder.server.prompts import Prompt
    from ponder.server.protocol import ChatCompletionRequest, CompletionRequest


@dataclass
class StrategyCall:
    """One accepted request with a reasoning_strategy, between start and its response."""

    request: ChatCompletionRequest | CompletionRequest
    spec: StrategySpec
    prompts: list[Prompt]
    params: SamplingParams
    engine: EngineClient
    model_name: str  # the requested model's own name, as the spec's `models` call it
    peers: dict[str, EngineClient]  # the other hosted models the spec names
    reward_models: RewardModels
    ticket: Ticket
    response_id: str
    metrics: ModelMetrics | None = None
    created: int = field(default_factory=lambda: int(time.time()))
    progress: list[StrategyProgress] = field(init=False)

    def __post_init__(self) -> None:
        self.progress = [StrategyProgress() for _ in self.prompts]

    def snapshots(self) -> list[ProgressSnapshot]:
        """Where each prompt's run stands now (all zeros before it starts)."""
        return [each.snapshot() for each in self.progress]

    async def run(self) -> list[StrategyResult]:
        """One result per prompt. Cancelling this (the client went away) or a failed run cancels
        every run, and each run aborts its unfinished requests, freeing their KV."""
        started = time.monotonic()
        runs = [
            asyncio.ensure_future(self._run(prompt, progress))
            for prompt, progress in zip(self.prompts, self.progress)
        ]
        try:
            results = list(await asyncio.gather(*runs))
        except asyncio.CancelledError:
            if self.metrics is not None:
                self.metrics.strategy_aborted()
            raise
        finally:
            for each in runs:
                each.cancel()  # gather leaves the others running when one fails
        if self.metrics is not None:
            for result in results:
                self.metrics.strategy_finished(result, time.monotonic() - started)
        return results

    async def _run(self, prompt: Prompt, progress: StrategyProgress) -> StrategyResult:
        return await run_strategy(
            self.engine,  # type: ignore[arg-type]  # AsyncEngine, or a test double
            prompt.as_reasoning_input(),
            self.params,
            self.spec,
            models=self.peers,  # type: ignore[arg-type]
            reward_models=self.reward_models,
            name=self.model_name,
            progress=progress,
        )

    def close(self) -> None:
        self.ticket.release()


class StrategyRunner:
    """Starts strategy calls on one hosted model; ensembles may name the router's other models."""

    def __init__(
        self,
        context: ServingContext,
        chat: ChatCompletions,
        completions: Completions,
        router: ModelRouter,
        reward_models: RewardModels,
    ):
        self.context = context
        self.chat = chat
        self.completions = completions
        self.router = router
        self.reward_models = reward_models

    @property
    def model_name(self) -> str:
        return self.context.settings.served_model_names[0]

    def start_chat(self, request: ChatCompletionRequest) -> StrategyCall:
        prompt, params = self.chat.prepare(request)
        return self._start(request, [prompt], params, "chatcmpl")

    def start_completion(self, request: CompletionRequest) -> StrategyCall:
        prompts, params = self.completions.prepare(request)
        return self._start(request, prompts, params, "cmpl")

    def _start(
        self,
        request: ChatCompletionRequest | CompletionRequest,
        prompts: list[Prompt],
        params: SamplingParams,
        id_prefix: str,
    ) -> StrategyCall:
        """Every check that needs no engine work happens here, so a bad request is a 400."""
        spec = parse_strategy_spec(request.reasoning_strategy)
        check_strategy_params(spec, params)
        if params.logprobs is not None:
            raise InvalidRequestError(
                "logprobs are not available with a reasoning_strategy (the answer comes from "
                "several samples); leave logprobs unset",
                param="logprobs",
            )
        spec, peers = self._resolve_models(spec)
        ticket = self.context.admit(len(prompts) * spec.max_sequences)
        return StrategyCall(
            request=request,
            spec=spec,
            prompts=prompts,
            params=params,
            engine=self.context.engine,
            model_name=self.model_name,
            peers=peers,
            reward_models=self.reward_models,
            ticket=ticket,
            response_id=self.context.new_id(id_prefix),
            metrics=self.context.metrics,
        )

    def _resolve_models(self, spec: StrategySpec) -> tuple[StrategySpec, dict[str, EngineClient]]:
        """An ensemble's names -> hosted engines: "default" and any served name (aliases too)
        of the requested model mean it; the spec gets each model's own name."""
        names = getattr(spec, "models", ())
        if not names:
            return spec, {}
        param = f"{PARAM_PREFIX}.models"
        canonical: list[str] = []
        peers: dict[str, EngineClient] = {}
        for name in names:
            served = self.router.find(self.model_name if name == "default" else name)
            if served is None:
                known = ", ".join(["default", *self.router.names])
                raise InvalidRequestError(
                    f"{param} names {name!r}, which this server does not host; models: {known}",
                    param=param,
                )
            canonical.append(served.name)
            if served.name != self.model_name:
                peers[served.name] = served.engine
        if len(set(canonical)) != len(canonical):
            raise InvalidRequestError(
                f'{param} names a model twice: {list(names)} ("default" is {self.model_name!r})',
                param=param,
            )
        return dataclasses.replace(spec, models=tuple(canonical)), peers
