"""/v1/chat/completions: template and sampling, then the engine's reasoning/content split,
streamed or whole; also the chat response shapes the strategy path builds with."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ponder.engine.output_text import TextSplit
from ponder.openai import errors
from ponder.openai.generation import Generation, ServingContext
from ponder.openai.logprobs import TokenText, chat_logprobs
from ponder.openai.prompts import Prompt, check_context_length, render_chat
from ponder.openai.protocol import ChatCompletionRequest, unsupported_features
from ponder.openai.reasoning_output import ReplyShape
from ponder.openai.sampling import build_sampling_params, plan_reasoning
from ponder.openai.usage import UsageCounter

if TYPE_CHECKING:
    from ponder.engine.outputs import CompletionOutput
    from ponder.engine.sampling_params import SamplingParams


class ChatCompletions:
    """Turns chat requests of one hosted model into engine requests."""

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

    def start(
        self, request: ChatCompletionRequest, prepared: tuple[Prompt, SamplingParams] | None = None
    ) -> ChatRun:
        """Validate, render and queue (or queue what `prepare` made); raises API or typed errors
        before any response starts."""
        prompt, params = prepared or self.prepare(request)
        response_id = self.context.new_id("chatcmpl")
        generation = self.context.start(response_id, [prompt], params, request.priority)
        return ChatRun(request, generation, response_id, self.token_text)


@dataclass
class ChatRun:
    """One accepted plain chat request: its response, whole or as chunks."""

    request: ChatCompletionRequest
    generation: Generation
    response_id: str
    token_text: TokenText
    created: int = field(default_factory=lambda: int(time.time()))
    usage: UsageCounter = field(default_factory=UsageCounter)

    def close(self) -> None:
        self.generation.close()

    async def stream(self) -> AsyncIterator[dict]:
        """The chunk objects of an SSE response (the caller adds `data:` and `[DONE]`)."""
        request = self.request
        options = request.stream_options
        include_usage = bool(options and options.include_usage)
        continuous_usage = bool(options and options.continuous_usage_stats)
        head = self._head("chat.completion.chunk")
        shapes = [reply_shape(request) for _ in range(request.n)]
        for index in range(request.n):
            yield chat_chunk(head, index, {"role": "assistant", "content": ""}, include_usage)
        async for _, output in self.generation.outputs():
            self.usage.add(0, output)
            for completion in output.outputs:
                delta = shapes[completion.index].delta(_split(completion))
                logprobs = self._logprobs(completion)
                chunks = []
                if delta or logprobs is not None:
                    chunks.append(chat_chunk(head, completion.index, delta, include_usage, logprobs))
                if completion.finish_reason is not None:
                    chunk = chat_chunk(head, completion.index, {}, include_usage)
                    chunk["choices"][0]["finish_reason"] = completion.finish_reason
                    chunk["choices"][0]["stop_reason"] = completion.stop_reason
                    chunks.append(chunk)
                for chunk in chunks:
                    if continuous_usage:
                        chunk["usage"] = self.usage.as_dict()
                    yield chunk
        if include_usage:
            yield {**head, "choices": [], "usage": self.usage.as_dict()}

    async def respond(self) -> dict:
        request = self.request
        texts = [["", ""] for _ in range(request.n)]
        logprobs: list[list[dict]] = [[] for _ in range(request.n)]
        finish: list[tuple[str | None, int | str | None]] = [(None, None)] * request.n
        async for _, output in self.generation.outputs():
            self.usage.add(0, output)
            for completion in output.outputs:
                index = completion.index
                texts[index][0] += completion.reasoning
                texts[index][1] += completion.content
                entries = self._logprobs(completion)
                if entries is not None:
                    logprobs[index].extend(entries["content"])
                if completion.finish_reason is not None:
                    finish[index] = (completion.finish_reason, completion.stop_reason)
        choices = [
            {
                "index": index,
                "message": reply_shape(request).message(TextSplit(*texts[index])),
                "logprobs": {"content": logprobs[index]} if request.logprobs else None,
                "finish_reason": finish[index][0],
                "stop_reason": finish[index][1],
            }
            for index in range(request.n)
        ]
        return {**self._head("chat.completion"), "choices": choices, "usage": self.usage.as_dict()}

    def _logprobs(self, completion: CompletionOutput) -> dict | None:
        request = self.request
        if not request.logprobs or not completion.token_ids:
            return None
        entries = chat_logprobs(
            completion.token_ids, completion.logprobs, request.top_logprobs or 0, self.token_text
        )
        return {"content": entries}

    def _head(self, kind: str) -> dict:
        return chat_envelope(self.response_id, kind, self.created, self.request.model)


def _split(completion: CompletionOutput) -> TextSplit:
    return TextSplit(completion.reasoning, completion.content)


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


def reply_shape(request: ChatCompletionRequest) -> ReplyShape:
    """How one choice of `request` places its thought (the service fills in the server default)."""
    return ReplyShape(request.reasoning_output or "separate", request.include_reasoning)
