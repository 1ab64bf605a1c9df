"""StrategyCall: one accepted request with a reasoning_strategy, run on the requested model's
engine through ponder.reasoning.controller (one run per prompt; its branches share the prompt's
KV), and answered in the request's own shape: each choice is the chosen output (the voted
answer) with a `strategy` object (votes, branches, usage); the usage counts every generated token.

A streamed run sends progress chunks while it runs (no content, a `strategy_progress` object per
choice), then the decided answer: the branches' tokens are not the answer until the vote.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ponder.engine.output_text import TextSplit
from ponder.openai.chat import chat_envelope, delta_choice, reply_shape
from ponder.openai.completions import completion_envelope
from ponder.openai.protocol import ChatCompletionRequest, CompletionRequest
from ponder.openai.reasoning_output import ReplyShape
from ponder.openai.usage import strategy_usage
from ponder.reasoning.controller import run_strategy
from ponder.reasoning.progress import ProgressSnapshot, StrategyProgress

if TYPE_CHECKING:
    from ponder.engine.sampling_params import SamplingParams
    from ponder.openai.generation import EngineClient, Ticket
    from ponder.openai.metrics import ModelMetrics
    from ponder.openai.prompts import Prompt
    from ponder.reasoning.reward_model import RewardModels
    from ponder.reasoning.specs import StrategySpec
    from ponder.reasoning.strategies import StrategyResult

PROGRESS_INTERVAL_S = 0.5  # often enough to show work is happening, rare enough to cost nothing


@dataclass
class StrategyCall:
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
    shape: ResponseShape = field(init=False)

    def __post_init__(self) -> None:
        self.progress = [StrategyProgress() for _ in self.prompts]
        self.shape = (
            ChatShape(self) if isinstance(self.request, ChatCompletionRequest) else CompletionShape(self)
        )

    def close(self) -> None:
        self.ticket.release()

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
            self.engine,
            prompt.as_reasoning_prompt(),
            self.params,
            self.spec,
            models=self.peers,
            reward_models=self.reward_models,
            name=self.model_name,
            progress=progress,
        )

    async def respond(self) -> dict:
        """Run the strategy to its end and answer with the whole response."""
        results = await self.run()
        choices = [self.shape.whole_choice(i, result) | _finish(result) for i, result in enumerate(results)]
        return {**self.shape.head(whole=True), "choices": choices, "usage": _usage(results)}

    async def stream(self, interval_s: float = PROGRESS_INTERVAL_S) -> AsyncIterator[dict]:
        """The streamed response's chunk objects (the caller adds `data:` and `[DONE]`): progress
        at most every `interval_s` while the strategy runs and once when it ends, then the
        decided answer. Closing the stream cancels the run, which aborts every branch."""
        run = asyncio.ensure_future(self.run())
        try:
            opening = self.shape.opening_choices()
            if opening:
                yield self._chunk(opening, self._running_usage())
            while True:
                done, _ = await asyncio.wait({run}, timeout=interval_s)
                yield self._progress_chunk()
                if done:
                    break
            results = run.result()
            usage = _usage(results)
            for index, result in enumerate(results):
                for choice in self.shape.answer_choices(index, result):
                    yield self._chunk([choice], usage)
                yield self._chunk([self.shape.empty_choice(index) | _finish(result)], usage)
            options = self.request.stream_options
            if options and options.include_usage:
                yield {**self.shape.head(whole=False), "choices": [], "usage": usage}
        finally:
            run.cancel()

    def _progress_chunk(self) -> dict:
        """No content; each choice carries its run's `strategy_progress` (clients that do not
        know the field see an empty delta, as in a chat stream's last chunk)."""
        snapshots = self.snapshots()
        choices = [
            self.shape.empty_choice(index) | {"strategy_progress": snapshot.to_dict()}
            for index, snapshot in enumerate(snapshots)
        ]
        return self._chunk(choices, strategy_usage([snapshot.usage for snapshot in snapshots]))

    def _chunk(self, choices: list[dict], usage: dict) -> dict:
        """A chunk with the stream's usage convention: null until the last chunk with
        include_usage, the running usage in every chunk with continuous_usage_stats."""
        chunk = {**self.shape.head(whole=False), "choices": choices}
        options = self.request.stream_options
        if options and options.continuous_usage_stats:
            chunk["usage"] = usage
        elif options and options.include_usage:
            chunk["usage"] = None
        return chunk

    def _running_usage(self) -> dict:
        return strategy_usage([progress.usage() for progress in self.progress])


class ResponseShape(Protocol):
    """How a strategy's results read in the request's API: chat or completions."""

    def head(self, *, whole: bool) -> dict: ...

    def opening_choices(self) -> list[dict]: ...

    def empty_choice(self, index: int) -> dict: ...

    def whole_choice(self, index: int, result: StrategyResult) -> dict: ...

    def answer_choices(self, index: int, result: StrategyResult) -> list[dict]: ...


@dataclass
class ChatShape:
    call: StrategyCall

    def head(self, *, whole: bool) -> dict:
        kind = "chat.completion" if whole else "chat.completion.chunk"
        return chat_envelope(self.call.response_id, kind, self.call.created, self.call.request.model)

    def opening_choices(self) -> list[dict]:
        return [delta_choice(0, {"role": "assistant", "content": ""})]

    def empty_choice(self, index: int) -> dict:
        return delta_choice(index, {})

    def whole_choice(self, index: int, result: StrategyResult) -> dict:
        message = self._shape().message(_split(result))
        return {"index": index, "message": message, "logprobs": None}

    def answer_choices(self, index: int, result: StrategyResult) -> list[dict]:
        """The thought, then the answer, as a streamed thought would arrive."""
        parts = (TextSplit(result.reasoning, ""), TextSplit("", result.content))
        shape = self._shape()
        deltas = [shape.delta(part) for part in parts]
        return [delta_choice(index, delta) for delta in deltas if delta]

    def _shape(self) -> ReplyShape:
        request = self.call.request
        assert isinstance(request, ChatCompletionRequest)  # a ChatShape serves chat requests
        return reply_shape(request)


@dataclass
class CompletionShape:
    call: StrategyCall

    def head(self, *, whole: bool) -> dict:
        return completion_envelope(self.call.response_id, self.call.created, self.call.request.model)

    def opening_choices(self) -> list[dict]:
        return []

    def empty_choice(self, index: int) -> dict:
        return {"index": index, "text": "", "logprobs": None, "finish_reason": None}

    def whole_choice(self, index: int, result: StrategyResult) -> dict:
        """A completion's text is raw: the chosen output's thought and answer, as the engine
        would return them (echo puts the prompt in front)."""
        call = self.call
        text = call.engine.tokenizer.decode(result.token_ids)
        request = call.request
        if isinstance(request, CompletionRequest) and request.echo:
            text = call.prompts[index].echo_text(call.engine.tokenizer) + text
        return {"index": index, "text": text, "logprobs": None}

    def answer_choices(self, index: int, result: StrategyResult) -> list[dict]:
        return [self.whole_choice(index, result) | {"finish_reason": None}]


def _split(result: StrategyResult) -> TextSplit:
    return TextSplit(result.reasoning, result.content)


def _usage(results: list[StrategyResult]) -> dict:
    return strategy_usage([result.usage for result in results])


def _finish(result: StrategyResult) -> dict:
    return {
        "finish_reason": result.finish_reason,
        "stop_reason": None,
        "strategy": strategy_summary(result),
    }


def strategy_summary(result: StrategyResult) -> dict:
    """The ponder extension of a choice: what the strategy did, without the branches' texts
    (the chosen one is the choice itself; all of them could be megabytes)."""
    summary = result.to_dict()
    for key in ("reasoning", "content"):
        del summary[key]
        for branch in summary["branches"]:
            del branch[key]
    return _json_safe(summary)


def _json_safe(value: Any) -> Any:
    """JSON has no infinities or NaN (a confidence over no tokens can be one): they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value
