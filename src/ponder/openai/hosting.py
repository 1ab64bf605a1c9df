"""The models one server hosts: each has its own engine, serving context and handlers, and is
found by any of its served names (the `model` field of a request)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from ponder.openai import errors
from ponder.openai.chat import ChatCompletions
from ponder.openai.completions import Completions
from ponder.openai.generation import EngineClient, ServingContext
from ponder.openai.metrics import ServerMetrics
from ponder.openai.settings import ServerSettings
from ponder.openai.strategy_runner import StrategyRunner
from ponder.reasoning.reward_model import RewardModels


@dataclass(frozen=True)
class HostedModel:
    engine: EngineClient
    names: tuple[str, ...]  # the first is its own name: reported, and used by ensembles
    path: str = ""
    version: str = "v1"  # the model version: in every response and request-log row

    @classmethod
    def primary(cls, engine: EngineClient, settings: ServerSettings) -> HostedModel:
        """The model a server is started for, under the names its settings give."""
        return cls(engine, settings.served_model_names, settings.model_path)


@dataclass
class ServedModel:
    hosted: HostedModel
    context: ServingContext
    chat: ChatCompletions
    completions: Completions
    strategies: StrategyRunner
    open_calls: int = 0  # calls routed here and not yet closed: a promotion waits for them

    @property
    def name(self) -> str:
        return self.hosted.names[0]

    @property
    def engine(self) -> EngineClient:
        return self.hosted.engine


class ModelRouter:
    """Every hosted model by every one of its names; the first model is the primary one."""

    def __init__(
        self,
        models: Sequence[HostedModel],
        settings: ServerSettings,
        metrics: ServerMetrics | None = None,
    ):
        if not models:
            raise ValueError("a server hosts at least one model")
        self.settings = settings
        self.metrics = metrics
        self.reward_models = RewardModels(settings.reward_models)  # loaded on first use
        self.models: list[ServedModel] = []
        self._by_name: dict[str, ServedModel] = {}
        for hosted in models:
            served = self._serve(hosted)
            for name in hosted.names:
                if name in self._by_name:
                    raise ValueError(f"the model name {name!r} is served twice")
                self._by_name[name] = served
            self.models.append(served)

    def _serve(self, hosted: HostedModel) -> ServedModel:
        # Each model has its own admission (its engine's capacity) and metric labels.
        model_settings = dataclasses.replace(
            self.settings, served_model_names=hosted.names, model_path=hosted.path
        )
        model_metrics = self.metrics.model(hosted.names[0]) if self.metrics is not None else None
        context = ServingContext(hosted.engine, model_settings, model_metrics)
        chat = ChatCompletions(context)
        completions = Completions(context)
        strategies = StrategyRunner(context, chat, completions, self, self.reward_models)
        return ServedModel(hosted, context, chat, completions, strategies)

    def swap(self, current: ServedModel, hosted: HostedModel) -> ServedModel:
        """Serve `hosted` under `current`'s names from now on; requests already routed to
        `current` keep its handlers and finish there (the caller drains and stops it)."""
        served = self._serve(dataclasses.replace(hosted, names=current.hosted.names))
        served.context.draining = current.context.draining
        self.models[self.models.index(current)] = served
        for name in current.hosted.names:
            self._by_name[name] = served
        return served

    @property
    def primary(self) -> ServedModel:
        return self.models[0]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def find(self, name: str) -> ServedModel | None:
        return self._by_name.get(name)

    def route(self, name: str) -> ServedModel:
        """The model a request names, or 404 listing every served name."""
        served = self._by_name.get(name)
        if served is not None:
            return served
        if self.settings.accept_any_model:  # offline batch: one model answers any name
            return self.primary
        raise errors.model_not_found(name, self.names)

    @property
    def draining(self) -> bool:
        return self.primary.context.draining

    def drain(self) -> None:
        """Refuse new requests on every model (503); in-flight ones go on."""
        for served in self.models:
            served.context.draining = True

    @property
    def in_flight(self) -> int:
        return sum(served.context.admission.in_flight for served in self.models)

    async def shutdown(self) -> None:
        for served in self.models:
            shutdown = getattr(served.engine, "shutdown", None)
            if shutdown is not None:
                await shutdown()
