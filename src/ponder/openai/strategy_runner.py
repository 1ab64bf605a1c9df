"""The `reasoning_strategy` field of /v1/chat/completions, /v1/completions and /v1/responses:
parse the spec once, check it against the request and the hosted models, and admit the run
(a StrategyCall, which runs and answers it)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Protocol

from ponder.errors import InvalidRequestError
from ponder.openai.protocol import ChatCompletionRequest
from ponder.openai.strategy_call import StrategyCall
from ponder.reasoning.controller import check_strategy_params
from ponder.reasoning.spec_parser import parse_strategy_spec
from ponder.reasoning.specs import PARAM_PREFIX, CascadeSpec, EnsembleSpec, StrategySpec

if TYPE_CHECKING:
    from ponder.engine.sampling_params import SamplingParams
    from ponder.openai.chat import ChatCompletions
    from ponder.openai.completions import Completions
    from ponder.openai.generation import EngineClient, ServingContext
    from ponder.openai.prompts import Prompt
    from ponder.openai.protocol import CompletionRequest
    from ponder.reasoning.reward_model import RewardModels


class PeerModel(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def engine(self) -> EngineClient: ...


class PeerModels(Protocol):
    """The server's other hosted models, which an ensemble may name (hosting.ModelRouter)."""

    @property
    def names(self) -> tuple[str, ...]: ...

    def find(self, name: str) -> PeerModel | None: ...


class StrategyRunner:
    """Starts strategy calls on one hosted model; ensembles may name the router's other models."""

    def __init__(
        self,
        context: ServingContext,
        chat: ChatCompletions,
        completions: Completions,
        router: PeerModels,
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

    def prepare(
        self, request: ChatCompletionRequest | CompletionRequest
    ) -> tuple[list[Prompt], SamplingParams]:
        if isinstance(request, ChatCompletionRequest):
            prompt, params = self.chat.prepare(request)
            return [prompt], params
        return self.completions.prepare(request)

    def start(
        self,
        request: ChatCompletionRequest | CompletionRequest,
        prepared: tuple[list[Prompt], SamplingParams] | None = None,
    ) -> StrategyCall:
        """Every check that needs no engine work happens here, so a bad request is a 400."""
        prompts, params = prepared or self.prepare(request)
        id_prefix = "chatcmpl" if isinstance(request, ChatCompletionRequest) else "cmpl"
        assert request.reasoning_strategy is not None  # the service sends only strategy requests here
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
        if not isinstance(spec, EnsembleSpec | CascadeSpec) or not spec.models:
            return spec, {}
        names = spec.models
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
