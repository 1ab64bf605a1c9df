"""Strategy results as OpenAI responses: each choice is the chosen output (the voted answer),
with a `strategy` object (votes, branches, usage); the usage counts every generated token.

Streaming sends the same thing as chunks once the strategy has decided: the branches' tokens are
not the answer until the vote, so there is nothing earlier worth streaming.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ponder.reasoning.think_parser import ThinkSplit, prompt_opens_thought, split_reasoning
from ponder.server.chat import assistant_message, chat_chunk, chat_envelope, message_delta
from ponder.server.completions import completion_envelope
from ponder.server.protocol import ChatCompletionRequest
from ponder.server.usage import strategy_usage

if TYPE_CHECKING:
    from ponder.reasoning.strategies import StrategyResult
    from ponder.server.strategies import StrategyCall


def strategy_body(call: StrategyCall, results: list[StrategyResult]) -> dict:
    """The whole (non-streaming) response."""
    if isinstance(call.request, ChatCompletionRequest):
        head = chat_envelope(call.response_id, "chat.completion", call.created, call.request.model)
        choices = [
            {
                "index": index,
                "message": assistant_message(_split(call, index, result), call.request.include_reasoning),
                "logprobs": None,
                **_finish(result),
            }
            for index, result in enumerate(results)
        ]
    else:
        head = completion_envelope(call.response_id, call.created, call.request.model)
        choices = [
            _completion_choice(call, index, result) | _finish(result) for index, result in enumerate(results)
        ]
    return {**head, "choices": choices, "usage": strategy_usage(results)}


def strategy_chunks(call: StrategyCall, results: list[StrategyResult]) -> list[dict]:
    """The streamed response's chunk objects (the caller adds `data:` and `[DONE]`)."""
    request = call.request
    include_usage = bool(request.stream_options and request.stream_options.include_usage)
    usage = strategy_usage(results)
    if isinstance(request, ChatCompletionRequest):
        head = chat_envelope(call.response_id, "chat.completion.chunk", call.created, request.model)
        split = _split(call, 0, results[0])  # chat has one prompt, and n is 1 with a strategy
        chunks = [chat_chunk(head, 0, {"role": "assistant", "content": ""}, include_usage)]
        # The thought, then the answer, as a streamed thought would arrive.
        for part in (ThinkSplit(reasoning=split.reasoning), ThinkSplit(content=split.content)):
            delta = message_delta(part, request.include_reasoning)
            if delta:
                chunks.append(chat_chunk(head, 0, delta, include_usage))
        chunks.append(chat_chunk(head, 0, {}, include_usage))
        chunks[-1]["choices"][0].update(_finish(results[0]))
    else:
        head = completion_envelope(call.response_id, call.created, request.model)
        chunks = []
        for index, result in enumerate(results):
            chunks.append({**head, "choices": [_completion_choice(call, index, result) | _finish(result)]})
            if include_usage:
                chunks[-1]["usage"] = None
    if request.stream_options and request.stream_options.continuous_usage_stats:
        for each in chunks:
            each["usage"] = usage
    if include_usage:
        chunks.append({**head, "choices": [], "usage": usage})
    return chunks


def strategy_summary(result: StrategyResult) -> dict:
    """The ponder extension of a choice: what the strategy did, without the branches' texts
    (the chosen one is the choice itself; all of them could be megabytes)."""
    summary = result.to_dict()
    del summary["text"]
    for branch in summary["branches"]:
        del branch["text"]
    return _json_safe(summary)


def _split(call: StrategyCall, index: int, result: StrategyResult) -> ThinkSplit:
    return split_reasoning(result.text, prompt_opens_thought(call.prompts[index].text))


def _finish(result: StrategyResult) -> dict:
    return {
        "finish_reason": result.finish_reason,
        "stop_reason": None,
        "strategy": strategy_summary(result),
    }


def _completion_choice(call: StrategyCall, index: int, result: StrategyResult) -> dict:
    text = result.text
    if call.request.echo:
        prompt = call.prompts[index]
        echoed = prompt.text if prompt.text is not None else call.engine.tokenizer.decode(prompt.token_ids)
        text = echoed + text
    return {"index": index, "text": text, "logprobs": None}


def _json_safe(value: Any) -> Any:
    """JSON has no infinities or NaN (a confidence over no tokens can be one): they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value
