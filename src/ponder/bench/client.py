"""Sends one streaming request to an OpenAI-compatible server and records what came back."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx

from ponder.bench.config import Target
from ponder.bench.datasets import BenchPrompt
from ponder.bench.records import RequestRecord
from ponder.bench.stream import SSEDecoder, StreamTimeline, TokenChunk, build_timeline
from ponder.bench.tokens import TextTokenizer

_MAX_ERROR_CHARS = 300


class _StreamFailure(Exception):
    """A response that cannot be measured; `kind` is the error's name in the report."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def build_payload(target: Target, prompt: BenchPrompt) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "model": target.model,
        "max_tokens": prompt.output_len,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if target.is_chat:
        payload["messages"] = [{"role": "user", "content": prompt.text}]
    else:
        payload["prompt"] = prompt.text
    if target.ignore_eos:
        payload["ignore_eos"] = True
    payload.update(target.extra_body)
    return payload


def auth_headers(target: Target) -> dict[str, str]:
    return {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}


async def send_request(
    client: httpx.AsyncClient,
    target: Target,
    prompt: BenchPrompt,
    index: int,
    run_start: float,
    tokenizer: TextTokenizer | None,
) -> RequestRecord:
    """Never raises for a bad response: failures come back as records with an error_kind."""
    sent = time.perf_counter()
    record = RequestRecord(
        index=index,
        prompt_len=prompt.prompt_len,
        max_tokens=prompt.output_len,
        start_s=sent - run_start,
        success=False,
    )
    try:
        async with asyncio.timeout(target.request_timeout_s):
            chunks, usage = await _read_stream(client, target, prompt, sent)
    except _StreamFailure as failure:
        return _failed(record, failure.kind, str(failure))
    except (TimeoutError, httpx.TimeoutException):
        return _failed(record, "timeout", f"no complete response within {target.request_timeout_s}s")
    except httpx.HTTPError as exc:
        return _failed(record, "connection_error", f"{type(exc).__name__}: {exc}")
    if not chunks:
        return _failed(record, "no_output", "the stream ended without any generated text")
    _fill_success(record, build_timeline(chunks), usage, prompt, tokenizer)
    return record


async def _read_stream(
    client: httpx.AsyncClient, target: Target, prompt: BenchPrompt, sent: float
) -> tuple[list[TokenChunk], dict | None]:
    chunks: list[TokenChunk] = []
    usage: dict | None = None
    payload = build_payload(target, prompt)
    async with client.stream("POST", target.url, json=payload, headers=auth_headers(target)) as resp:
        if resp.status_code != 200:
            body = (await resp.aread()).decode("utf-8", "replace")
            raise _StreamFailure(f"http_{resp.status_code}", f"HTTP {resp.status_code}: {_error_text(body)}")
        decoder = SSEDecoder()
        async for line in resp.aiter_lines():
            data = decoder.feed(line)
            if data is None:
                continue
            if data.strip() == "[DONE]":
                break
            event = _parse_event(data)
            usage = event.get("usage") or usage
            reasoning, content = _chunk_texts(event, target.is_chat)
            if reasoning or content:
                chunks.append(TokenChunk(time.perf_counter() - sent, reasoning, content))
    return chunks, usage


def _parse_event(data: str) -> dict:
    try:
        event = json.loads(data)
    except json.JSONDecodeError:
        raise _StreamFailure("malformed_chunk", f"chunk is not JSON: {data[:80]!r}") from None
    if not isinstance(event, dict):
        raise _StreamFailure("malformed_chunk", f"chunk is not a JSON object: {data[:80]!r}")
    if event.get("error"):
        raise _StreamFailure("stream_error", f"error in stream: {_error_text(data)}")
    return event


def _chunk_texts(event: dict, is_chat: bool) -> tuple[str, str]:
    """(reasoning, content) of a chunk; reasoning may be `reasoning` or `reasoning_content`."""
    choices = event.get("choices") or []
    if not choices:
        return "", ""
    choice = choices[0]
    fields = choice.get("delta") if is_chat and isinstance(choice, dict) else choice
    if not isinstance(fields, dict):
        raise _StreamFailure("malformed_chunk", f"choice without a delta: {str(choice)[:80]!r}")
    reasoning = fields.get("reasoning") or fields.get("reasoning_content") or ""
    content = fields.get("content" if is_chat else "text") or ""
    if not isinstance(reasoning, str) or not isinstance(content, str):
        raise _StreamFailure("malformed_chunk", f"non-text delta: {str(fields)[:80]!r}")
    return reasoning, content


def _fill_success(
    record: RequestRecord,
    timeline: StreamTimeline,
    usage: dict | None,
    prompt: BenchPrompt,
    tokenizer: TextTokenizer | None,
) -> None:
    record.success = True
    record.ttft_s, record.e2e_s = timeline.ttft, timeline.e2e
    record.itl_s, record.time_to_answer_s = timeline.itl, timeline.time_to_answer
    if usage and usage.get("prompt_tokens") is not None:
        record.prompt_len = int(usage["prompt_tokens"])
    counts = _count_output_tokens(timeline, usage, tokenizer)
    record.output_tokens, record.reasoning_tokens, record.answer_tokens = counts[:3]
    record.token_count_source = counts[3]
    if prompt.check is not None:
        try:
            record.correct = bool(prompt.check(timeline.answer_text))
        except Exception as exc:  # a checker bug must not stop the benchmark
            record.check_error = f"{type(exc).__name__}: {exc}"


def _count_output_tokens(
    timeline: StreamTimeline, usage: dict | None, tokenizer: TextTokenizer | None
) -> tuple[int, int, int, str]:
    """(output, reasoning, answer, source): server usage first, then tokenizer, then chunks."""
    if usage and usage.get("completion_tokens") is not None:
        output = int(usage["completion_tokens"])
        details = usage.get("completion_tokens_details") or {}
        reasoning = details.get("reasoning_tokens")
        if reasoning is None:
            reasoning = _fallback_count(timeline.reasoning_text, timeline.num_reasoning_chunks, tokenizer)
        reasoning = min(int(reasoning), output)
        return output, reasoning, output - reasoning, "usage"
    reasoning = _fallback_count(timeline.reasoning_text, timeline.num_reasoning_chunks, tokenizer)
    answer = _fallback_count(timeline.answer_text, timeline.num_answer_chunks, tokenizer)
    return reasoning + answer, reasoning, answer, "tokenizer" if tokenizer else "chunks"


def _fallback_count(text: str, num_chunks: int, tokenizer: TextTokenizer | None) -> int:
    return tokenizer.count(text) if tokenizer else num_chunks


def _failed(record: RequestRecord, kind: str, message: str) -> RequestRecord:
    record.error_kind, record.error = kind, message[:_MAX_ERROR_CHARS]
    return record


def _error_text(body: str) -> str:
    """The server's own message when it sent an OpenAI-style error, else the raw body."""
    try:
        error = json.loads(body).get("error")
        message = error.get("message") if isinstance(error, dict) else error
        if message:
            return str(message)[:_MAX_ERROR_CHARS]
    except (json.JSONDecodeError, AttributeError):
        pass
    return body.strip()[:_MAX_ERROR_CHARS] or "(empty body)"
