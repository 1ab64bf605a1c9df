"""/v1/completions: raw prompts (text or token ids, one or many), raw text back, echo, logprobs."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ponder.openai import errors
from ponder.openai.generation import Generation, ServingContext
from ponder.openai.logprobs import TokenText, completion_logprobs, merge_completion_logprobs
from ponder.openai.prompts import Prompt, check_context_length, completion_prompts
from ponder.openai.protocol import CompletionRequest, unsupported_features
from ponder.openai.sampling import build_sampling_params, plan_reasoning
from ponder.openai.usage import UsageCounter

if TYPE_CHECKING:
    from ponder.engine.sampling_params import SamplingParams


class Completions:
    def __init__(self, context: ServingContext):
        self.context = context
        self.token_text = TokenText(context.engine.tokenizer)

    def prepare(self, request: CompletionRequest) -> tuple[list[Prompt], SamplingParams]:
        """Validate and tokenize; raises API or typed errors."""
        context = self.context
        context.check_model(request.model)
        for param, message in unsupported_features(request):
            raise errors.unsupported(param, message)
        plan = plan_reasoning(request, context.settings, context.is_reasoning_model)
        prompts = completion_prompts(context.engine.tokenizer, request.prompt)
        for prompt in prompts:
            check_context_length(prompt, request.output_limit, context.engine.max_model_len, "prompt")
        return prompts, build_sampling_params(request, plan)

    def start(
        self, request: CompletionRequest, prepared: tuple[list[Prompt], SamplingParams] | None = None
    ) -> CompletionRun:
        context = self.context
        prompts, params = prepared or self.prepare(request)
        response_id = context.new_id("cmpl")
        generation = context.start(response_id, prompts, params, request.priority)
        return CompletionRun(request, generation, prompts, response_id, self.token_text)


@dataclass
class CompletionRun:
    """One accepted plain completion request: its response, whole or as chunks."""

    request: CompletionRequest
    generation: Generation
    prompts: list[Prompt]
    response_id: str
    token_text: TokenText
    created: int = field(default_factory=lambda: int(time.time()))
    usage: UsageCounter = field(default_factory=UsageCounter)
    # per choice: characters of text so far (logprob text offsets), whether the echo went out
    text_offsets: dict[int, int] = field(default_factory=dict)
    echoed: set[int] = field(default_factory=set)

    def close(self) -> None:
        self.generation.close()

    async def stream(self) -> AsyncIterator[dict]:
        options = self.request.stream_options
        include_usage = bool(options and options.include_usage)
        async for prompt_index, output in self.generation.outputs():
            self.usage.add(prompt_index, output)
            for completion in output.outputs:
                choice = self._choice(prompt_index, output, completion)
                if choice["text"] or choice["logprobs"] or choice["finish_reason"]:
                    chunk = {**self._head(), "choices": [choice]}
                    if include_usage:
                        chunk["usage"] = None
                    yield chunk
        if include_usage:
            yield {**self._head(), "choices": [], "usage": self.usage.as_dict()}

    async def respond(self) -> dict:
        choices: dict[int, dict] = {}
        async for prompt_index, output in self.generation.outputs():
            self.usage.add(prompt_index, output)
            for completion in output.outputs:
                part = self._choice(prompt_index, output, completion)
                whole = choices.setdefault(part["index"], {**part, "text": "", "logprobs": None})
                whole["text"] += part["text"]
                if part["logprobs"] is not None:
                    whole["logprobs"] = merge_completion_logprobs(whole["logprobs"], part["logprobs"])
                whole["finish_reason"] = part["finish_reason"]
                whole["stop_reason"] = part["stop_reason"]
        return {
            **self._head(),
            "choices": [choices[index] for index in sorted(choices)],
            "usage": self.usage.as_dict(),
        }

    def _choice(self, prompt_index: int, output, completion) -> dict:
        request = self.request
        index = prompt_index * request.n + completion.index
        text = completion.text
        logprobs = None
        offset = self.text_offsets.get(index, 0)
        if request.echo and index not in self.echoed:
            self.echoed.add(index)
            prompt = self.prompts[prompt_index]
            echo_text = prompt.echo_text(self.token_text.tokenizer)
            if request.logprobs is not None:
                positions = output.prompt_logprobs or [None] * len(prompt.token_ids)
                logprobs = completion_logprobs(
                    prompt.token_ids, positions, request.logprobs, self.token_text, offset
                )
            text = echo_text + text
            offset += len(echo_text)
        if request.logprobs is not None and completion.token_ids:
            generated = completion_logprobs(
                completion.token_ids,
                completion.logprobs or [{}] * len(completion.token_ids),
                request.logprobs,
                self.token_text,
                offset,
            )
            logprobs = merge_completion_logprobs(logprobs, generated)
        self.text_offsets[index] = self.text_offsets.get(index, 0) + len(text)
        return {
            "index": index,
            "text": text,
            "logprobs": logprobs,
            "finish_reason": completion.finish_reason,
            "stop_reason": completion.stop_reason,
        }

    def _head(self) -> dict:
        return completion_envelope(self.response_id, self.created, self.request.model)


def completion_envelope(response_id: str, created: int, model: str) -> dict:
    return {
        "id": response_id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "system_fingerprint": None,
    }
