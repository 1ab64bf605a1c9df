"""Request logging for the data flywheel: every served chat or completion call is recorded in
the request log (ponder.flywheel.store) once it ends, and every response carries the version
of the model that produced it (in `system_fingerprint`).

The record is built from the response body (or the streamed chunks) the client got, so it
logs exactly what was served; appending only enqueues, never touching the disk on the loop."""

from __future__ import annotations

import contextvars
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from ponder.flywheel.records import LogRecord
from ponder.flywheel.store import RequestLogStore
from ponder.openai.call import Call
from ponder.openai.hosting import ServedModel
from ponder.openai.protocol import ChatCompletionRequest, CompletionRequest
from ponder.openai.reasoning_output import CLOSE, OPEN
from ponder.tasks.answers import extract_answer

WORKLOAD_HEADER = "x-workload-id"
DEFAULT_WORKLOAD = "default"
# Set per HTTP request from the x-workload-id header (ponder.server's middleware); asyncio
# tasks copy the context, so the call sees the value of the request that started it.
workload_header: contextvars.ContextVar[str | None] = contextvars.ContextVar("workload_header", default=None)


def workload_of(request: ChatCompletionRequest | CompletionRequest) -> str:
    """The `metadata.workload_id` field, else the x-workload-id header, else 'default'."""
    metadata = request.metadata if isinstance(request, ChatCompletionRequest) else None
    return (metadata or {}).get("workload_id") or workload_header.get() or DEFAULT_WORKLOAD


@dataclass
class _Reply:
    """Choice 0 of a response, gathered from the whole body or from streamed deltas."""

    reasoning: str = ""
    content: str = ""
    finish_reason: str | None = None
    strategy: dict | None = None
    usage: dict = field(default_factory=dict)
    response_id: str = ""

    def add_choice(self, choice: dict, streamed: bool) -> None:
        part = choice.get("delta" if streamed else "message")
        if isinstance(part, dict):
            self.reasoning += part.get("reasoning_content") or ""
            self.content += part.get("content") or ""
        elif "text" in choice:
            self.content += choice.get("text") or ""
        self.finish_reason = choice.get("finish_reason") or self.finish_reason
        self.strategy = choice.get("strategy") or self.strategy

    def add_body(self, body: dict, streamed: bool) -> None:
        self.response_id = self.response_id or str(body.get("id", ""))
        for choice in body.get("choices") or ():
            if choice.get("index", 0) == 0:
                self.add_choice(choice, streamed)
        if body.get("usage"):
            self.usage = body["usage"]

    def split(self) -> tuple[str, str]:
        """(reasoning, answer), the thought taken out of content where it was inlined."""
        if not self.reasoning and self.content.startswith(OPEN) and CLOSE in self.content:
            thought, _, answer = self.content[len(OPEN) :].partition(CLOSE)
            return thought, answer
        return self.reasoning, self.content


class LoggedCall:
    """A Call whose responses carry the model version, whose end is logged (when a store is
    set), and which counts as open on its served model until closed (so a promotion waits)."""

    def __init__(
        self,
        call: Call,
        request: ChatCompletionRequest | CompletionRequest,
        served: ServedModel,
        store: RequestLogStore | None,
    ):
        self.call = call
        self.request = request
        self.served = served
        self.model = served.name
        self.version = served.hosted.version
        self.store = store
        self.workload = workload_of(request)
        self.closed = False
        self.started_wall = time.time()
        self.started = time.monotonic()
        self.reply = _Reply()
        self.logged = False

    async def respond(self) -> dict:
        try:
            body = await self.call.respond()
        except Exception:
            self._log("error")
            raise
        body["system_fingerprint"] = self.version
        self.reply.add_body(body, streamed=False)
        self._log("ok")
        return body

    async def stream(self) -> AsyncIterator[dict]:
        status = "error"
        try:
            async for chunk in self.call.stream():
                if "system_fingerprint" in chunk:
                    chunk["system_fingerprint"] = self.version
                self.reply.add_body(chunk, streamed=True)
                yield chunk
            status = "ok"
        finally:
            self._log(status if status == "ok" else "aborted")

    def close(self) -> None:
        self.call.close()
        self._log("aborted")  # a no-op once the call was logged
        if not self.closed:
            self.closed = True
            self.served.open_calls -= 1

    def _log(self, status: str) -> None:
        if self.logged or self.store is None:
            return
        self.logged = True
        self.store.append(self.record(status))

    def record(self, status: str) -> LogRecord:
        reply, usage = self.reply, self.reply.usage
        reasoning, answer = reply.split()
        strategy = reply.strategy or {}
        details = usage.get("completion_tokens_details") or {}
        final = strategy.get("answer") if strategy else extract_answer(answer, reasoning)
        return LogRecord(
            response_id=reply.response_id,
            created=self.started_wall,
            model=self.model,
            model_version=self.version,
            workload_id=self.workload,
            endpoint="chat" if isinstance(self.request, ChatCompletionRequest) else "completion",
            prompt=_prompt_text(self.request),
            reasoning=reasoning,
            answer=answer,
            final_answer=final,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            reasoning_tokens=int(details.get("reasoning_tokens") or 0),
            latency_s=time.monotonic() - self.started,
            strategy=strategy.get("strategy"),
            agreement=_agreement(strategy),
            confidence=_confidence(strategy),
            finish_reason=reply.finish_reason,
            status=status,
        )


def _prompt_text(request: ChatCompletionRequest | CompletionRequest) -> str:
    if isinstance(request, ChatCompletionRequest):
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        return json.dumps(messages, ensure_ascii=False)
    prompt: Any = request.prompt
    return prompt if isinstance(prompt, str) else json.dumps(prompt)


def _agreement(strategy: dict) -> float | None:
    vote = strategy.get("vote") if strategy else None
    share = vote.get("share") if isinstance(vote, dict) else None
    return float(share) if isinstance(share, int | float) else None


def _confidence(strategy: dict) -> float | None:
    """Mean confidence of the branches that gave the chosen answer (where confidences were read)."""
    branches = strategy.get("branches") or [] if strategy else []
    values = [
        float(branch["confidence"])
        for branch in branches
        if branch.get("answer") == strategy.get("answer")
        and isinstance(branch.get("confidence"), int | float)
    ]
    return sum(values) / len(values) if values else None
