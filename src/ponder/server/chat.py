"""/v1/chat/completions: template, sampling, then the reasoning/content split, streamed or whole."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ponder.reasoning.think_parser import ThinkParser, ThinkSplit, prompt_opens_thought
from ponder.server import errors
from ponder.server.generation import Generation, ServingContext
from ponder.server.logprobs import TokenText, chat_logprobs
from ponder.server.prompts import Prompt, check_context_length, render_chat
from ponder.server.protocol import ChatCompletionRequest, unsupported_features
from ponder.server.sampling import build_sampling_params, plan_reasoning
from ponder.server.usage import UsageCounter

if TYPE_CHECKING:
    from ponder.engine.sampling_params import SamplingParams


@dataclass
class ChatRun:
    """One accepted chat request, between start() and its response."""

    request: ChatCompletionRequest
    generation: Generation
    prompt: Prompt
    response_id: str
    model: str
    created: int = field(default_factory=lambda: int(time.time()))
    usage: UsageCounter = field(default_factory=UsageCounter)

    def parsers(self) -> list[ThinkParser]:
        in_thought = prompt_opens_thought(self.prompt.text)
        return [ThinkParser(in_thought=in_thought) for _ in range(self.request.n)]


class ChatCompletions:
    def __init__(self, context: ServingContext):
        self.context = context
        self.token_text = TokenText(context.engine.tokenizer)

    def prepare(self, request: ChatCompletionRequest) -> tuple[Prompt, SamplingParams]:
        """Validate and render; raises API or typed errors."""
        context = self.context
        context.check_model(request.model)
        for param, message in unsupported_features(request):
            raise errors.unsupported(param, message)
        plan = plan_reasoning(request, context.settings, context.is_reasoning_model)
        prompt = render_chat(context.engine.tokenizer, request, plan.template_kwargs)
        check_context_length(prompt, request.output_limit, context.engine.max_model_len, "messages")
        return prompt, build_sampling_params(request, plan)

    def start(self, request: ChatCompletionRequest) -> ChatRun:
        """Validate, render and queue; raises API or typed errors before any response starts."""
        context = self.context
        prompt, params = self.prepare(request)
        response_id = context.new_id("chatcmpl")
        generation = context.start(response_id, [prompt], params, request.priority)
        return ChatRun(request, generation, prompt, response_id, request.model)

    async def stream(self, run: ChatRun) -> AsyncIterator[dict]:
        """The chunk objects of an SSE response (the caller adds `data:` and `[DONE]`)."""
        request = run.request
        options = request.stream_options
        include_usage = bool(options and options.include_usage)
        continuous_usage = bool(options and options.continuous_usage_stats)
        parsers = run.parsers()
        for index in range(request.n):
            yield self._chunk(run, index, {"role": "assistant", "content": ""}, include_usage)
        async for _, output in run.generation.outputs():
            run.usage.add(0, output)
            for completion in output.outputs:
                split = parsers[completion.index].feed(completion.text)
                if completion.finish_reason is not None:
                    split += parsers[completion.index].finish()
                delta = message_delta(split, request.include_reasoning)
                logprobs = self._logprobs(request, completion)
                if delta or logprobs is not None:
                    chunk = self._chunk(run, completion.index, delta, include_usage, logprobs)
                    if continuous_usage:
                        chunk["usage"] = run.usage.as_dict()
                    yield chunk
                if completion.finish_reason is not None:
                    chunk = self._chunk(run, completion.index, {}, include_usage)
                    chunk["choices"][0]["finish_reason"] = completion.finish_reason
                    chunk["choices"][0]["stop_reason"] = completion.stop_reason
                    if continuous_usage:
                        chunk["usage"] = run.usage.as_dict()
                    yield chunk
        if include_usage:
            yield {
                **self._envelope(run, "chat.completion.chunk"),
                "choices": [],
                "usage": run.usage.as_dict(),
            }

    async def respond(self, run: ChatRun) -> dict:
        request = run.request
        parsers = run.parsers()
        texts = [ThinkSplit() for _ in range(request.n)]
        logprobs: list[list[dict]] = [[] for _ in range(request.n)]
        finish: list[tuple[str | None, int | str | None]] = [(None, None)] * request.n
        async for _, output in run.generation.outputs():
            run.usage.add(0, output)
            for completion in output.outputs:
                index = completion.index
                texts[index] += parsers[index].feed(completion.text)
                entries = self._logprobs(request, completion)
                if entries is not None:
                    logprobs[index].extend(entries["content"])
                if completion.finish_reason is not None:
                    texts[index] += parsers[index].finish()
                    finish[index] = (completion.finish_reason, completion.stop_reason)
        choices = []
        for index in range(request.n):
            choices.append(
                {
                    "index": index,
                    "message": assistant_message(texts[index], request.include_reasoning),
                    "logprobs": {"content": logprobs[index]} if request.logprobs else None,
                    "finish_reason": finish[index][0],
                    "stop_reason": finish[index][1],
                }
            )
        return {
            **self._envelope(run, "chat.completion"),
            "choices": choices,
            "usage": run.usage.as_dict(),
        }

    def _logprobs(self, request: ChatCompletionRequest, completion) -> dict | None:
        if not request.logprobs or not completion.token_ids:
            return None
        entries = chat_logprobs(
            completion.token_ids, completion.logprobs, request.top_logprobs or 0, self.token_text
        )
        return {"content": entries}

    def _envelope(self, run: ChatRun, kind: str) -> dict:
        return chat_envelope(run.response_id, kind, run.created, run.model)

    def _chunk(
        self,
        run: ChatRun,
        index: int,
        delta: dict,
        include_usage: bool,
        logprobs: dict | None = None,
    ) -> dict:
        return chat_chunk(self._envelope(run, "chat.completion.chunk"), index, delta, include_usage, logprobs)


def chat_envelope(response_id: str, kind: str, created: int, model: str) -> dict:
    """The fields every chat response and chunk starts with."""
    return {
        "id": response_id,
        "object": kind,
        "created": created,
        "model": model,
        "system_fingerprint": None,
    }


def chat_chunk(
    head: dict, index: int, delta: dict, include_usage: bool, logprobs: dict | None = None
) -> dict:
    """One streamed chunk of choice `index` (finish_reason still null)."""
    body = {**head, "choices": [delta_choice(index, delta, logprobs)]}
    if include_usage:
        body["usage"] = None
    return body


def delta_choice(index: int, delta: dict, logprobs: dict | None = None) -> dict:
    return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": None}


def assistant_message(split: ThinkSplit, include_reasoning: bool) -> dict:
    message = {"role": "assistant", "content": split.content}
    if include_reasoning:
        message["reasoning"] = message["reasoning_content"] = split.reasoning or None
    message["tool_calls"] = []
    return message


def message_delta(split: ThinkSplit, include_reasoning: bool) -> dict:
    delta: dict = {}
    if split.reasoning and include_reasoning:
        delta["reasoning"] = delta["reasoning_content"] = split.reasoning
    if split.content:
        delta["content"] = split.content
    return delta
