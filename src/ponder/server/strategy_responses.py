"""Strategy results as OpenAI responses: each choice is the chosen output (the voted answer),
with a `strategy` object (votes, branches, usage); the usage counts every generated token.

A streamed run sends progress chunks while it runs (no content, a `strategy_progress` object per
choice), then the decided answer: the branches' tokens are not the answer until the vote.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ponder.reasoning.think_parser import ThinkSplit, prompt_opens_thought, split_reasoning
from ponder.server.chat import assistant_message, chat_envelope, delta_choice, message_delta
from ponder.server.completions import completion_envelope
from ponder.server.protocol import ChatCompletionRequest
from ponder.server.usage import strategy_usage

if TYPE_CHECKING:
    from ponder.reasoning.strategies import StrategyResult
    from ponder.server.strategies import StrategyCall

PROGRESS_INTERVAL_S = 0.5  # often enough to show work is happening, rare enough to cost nothing


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
    return {**head, "choices": choices, "usage": strategy_usage([result.usage for result in results])}


async def strategy_response(call: StrategyCall) -> dict:
    """Run the strategy to its end and answer with the whole response."""
    return strategy_body(call, await call.run())


async def strategy_stream(call: StrategyCall, interval_s: float = PROGRESS_INTERVAL_S) -> AsyncIterator[dict]:
    """The streamed response's chunk objects (the caller adds `data:` and `[DONE]`): progress at
    most every `interval_s` while the strategy runs and once when it ends, then the decided
    answer. Closing the stream cancels the run, which aborts every branch."""
    run = asyncio.ensure_future(call.run())
    try:
        if isinstance(call.request, ChatCompletionRequest):
            role = delta_choice(0, {"role": "assistant", "content": ""})
            yield _stream_chunk(call, [role], _running_usage(call))
        while True:
            done, _ = await asyncio.wait({run}, timeout=interval_s)
            yield _progress_chunk(call)
            if done:
                break
        for chunk in _answer_chunks(call, run.result()):
            yield chunk
    finally:
        run.cancel()


def _progress_chunk(call: StrategyCall) -> dict:
    """No content; each choice carries its run's `strategy_progress` (clients that do not know
    the field see an empty delta, as in a chat stream's last chunk)."""
    snapshots = call.snapshots()
    choices = [
        _empty_choice(call, index) | {"strategy_progress": snapshot.to_dict()}
        for index, snapshot in enumerate(snapshots)
    ]
    return _stream_chunk(call, choices, strategy_usage([snapshot.usage for snapshot in snapshots]))


def _answer_chunks(call: StrategyCall, results: list[StrategyResult]) -> list[dict]:
    usage = strategy_usage([result.usage for result in results])
    if isinstance(call.request, ChatCompletionRequest):
        split = _split(call, 0, results[0])  # chat has one prompt, and n is 1 with a strategy
        # The thought, then the answer, as a streamed thought would arrive.
        parts = (ThinkSplit(reasoning=split.reasoning), ThinkSplit(content=split.content))
        deltas = [message_delta(part, call.request.include_reasoning) for part in parts]
        chunks = [_stream_chunk(call, [delta_choice(0, delta)], usage) for delta in deltas if delta]
        chunks.append(_stream_chunk(call, [delta_choice(0, {}) | _finish(results[0])], usage))
    else:
        chunks = [
            _stream_chunk(call, [_completion_choice(call, index, result) | _finish(result)], usage)
            for index, result in enumerate(results)
        ]
    options = call.request.stream_options
    if options and options.include_usage:
        chunks.append({**_stream_head(call), "choices": [], "usage": usage})
    return chunks


def _stream_chunk(call: StrategyCall, choices: list[dict], usage: dict) -> dict:
    """A chunk with the stream's usage convention: null until the last chunk with
    include_usage, the running usage in every chunk with continuous_usage_stats."""
    chunk = {**_stream_head(call), "choices": choices}
    options = call.request.stream_options
    if options and options.continuous_usage_stats:
        chunk["usage"] = usage
    elif options and options.include_usage:
        chunk["usage"] = None
    return chunk


def _stream_head(call: StrategyCall) -> dict:
    if isinstance(call.request, ChatCompletionRequest):
        return chat_envelope(call.response_id, "chat.completion.chunk", call.created, call.request.model)
    return completion_envelope(call.response_id, call.created, call.request.model)


def _empty_choice(call: StrategyCall, index: int) -> dict:
    if isinstance(call.request, ChatCompletionRequest):
        return delta_choice(index, {})
    return {"index": index, "text": "", "logprobs": None, "finish_reason": None}


def _running_usage(call: StrategyCall) -> dict:
    return strategy_usage([progress.usage() for progress in call.progress])


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
