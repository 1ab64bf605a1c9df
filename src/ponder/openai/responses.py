"""/v1/responses: the chat path's result, or a reasoning_strategy's decided answer, as Responses
API output items (a reasoning item with the thinking, then the message), whole or as the
Responses streaming events."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from ponder.openai.call import Call
from ponder.openai.responses_protocol import ResponsesRequest


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


@dataclass
class ResponseRun:
    """A Responses API request, answered by the chat call it maps to (plain or a strategy)."""

    request: ResponsesRequest
    source: Call
    response_id: str = field(default_factory=lambda: _new_id("resp"))
    created_at: int = field(default_factory=lambda: int(time.time()))

    def close(self) -> None:
        """Abort whatever still runs and release its admission."""
        self.source.close()

    def envelope(
        self,
        status: str,
        output: list[dict],
        usage: dict | None,
        finish: str | None,
        strategy: dict | None = None,
    ) -> dict:
        body = {
            "id": self.response_id,
            "object": "response",
            "created_at": self.created_at,
            "model": self.request.model,
            "status": status,
            "incomplete_details": {"reason": "max_output_tokens"} if finish == "length" else None,
            "instructions": self.request.instructions,
            "max_output_tokens": self.request.max_output_tokens,
            "temperature": self.request.temperature,
            "top_p": self.request.top_p,
            "reasoning": self.request.reasoning.model_dump() if self.request.reasoning else None,
            "tools": self.request.tools or [],
            "tool_choice": self.request.tool_choice or "auto",
            "parallel_tool_calls": self.request.parallel_tool_calls is not False,
            "output": output,
            "usage": usage and responses_usage(usage),
            "error": None,
        }
        if strategy is not None:  # ponder's extension: what chat puts in choices[i].strategy
            body["strategy"] = strategy
        return body

    async def respond(self) -> dict:
        completion = await self.source.respond()
        choice = completion["choices"][0]
        message, finish = choice["message"], choice["finish_reason"]
        output = []
        if message.get("reasoning"):
            output.append(reasoning_item(_new_id("rs"), message["reasoning"], "completed"))
        status = "completed" if finish != "length" else "incomplete"
        output.append(message_item(_new_id("msg"), message["content"], status))
        return self.envelope(status, output, completion["usage"], finish, choice.get("strategy"))

    async def stream(self) -> AsyncIterator[dict]:
        """Responses streaming events (each with its `type` and `sequence_number`)."""
        numbers = itertools.count()
        items: list[dict] = []
        open_item: dict | None = None
        texts: list[str] = []
        finish, usage, strategy = None, None, None

        def event(kind: str, **data) -> dict:
            return {"type": kind, "sequence_number": next(numbers), **data}

        def close_item() -> list[dict]:
            nonlocal open_item
            item, open_item = open_item, None
            if item is None:
                return []
            text = "".join(texts)
            texts.clear()
            where = {"item_id": item["id"], "output_index": len(items) - 1}
            if item["type"] == "reasoning":
                item.update(reasoning_item(item["id"], text, "completed"))
                done = [event("response.reasoning_text.done", content_index=0, text=text, **where)]
            else:
                item.update(message_item(item["id"], text, "completed"))
                part = item["content"][0]
                done = [
                    event("response.output_text.done", content_index=0, text=text, **where),
                    event("response.content_part.done", content_index=0, part=part, **where),
                ]
            return [
                *done,
                event("response.output_item.done", output_index=len(items) - 1, item=item),
            ]

        def open_new(kind: str) -> list[dict]:
            nonlocal open_item
            events = close_item()
            if kind == "reasoning":
                open_item = {"id": _new_id("rs"), "type": "reasoning", "summary": [], "content": []}
            else:
                open_item = {
                    "id": _new_id("msg"),
                    "type": "message",
                    "role": "assistant",
                    "content": [],
                }
            open_item["status"] = "in_progress"
            items.append(open_item)
            index = len(items) - 1
            events.append(event("response.output_item.added", output_index=index, item=open_item))
            if kind == "message":
                part = {"type": "output_text", "text": "", "annotations": []}
                events.append(
                    event(
                        "response.content_part.added",
                        item_id=open_item["id"],
                        output_index=index,
                        content_index=0,
                        part=part,
                    )
                )
            return events

        yield event("response.created", response=self.envelope("in_progress", [], None, None))
        yield event("response.in_progress", response=self.envelope("in_progress", [], None, None))
        async for chunk in self.source.stream():
            usage = chunk.get("usage") or usage
            for choice in chunk["choices"]:
                finish = choice.get("finish_reason") or finish
                strategy = choice.get("strategy") or strategy
                if "strategy_progress" in choice:  # a standard event, with ponder's extension
                    progress = {"strategy_progress": choice["strategy_progress"]}
                    in_progress = self.envelope("in_progress", [], None, None) | progress
                    yield event("response.in_progress", response=in_progress)
                delta = choice["delta"]
                for kind, text in (
                    ("reasoning", delta.get("reasoning")),
                    ("message", delta.get("content")),
                ):
                    if not text:
                        continue
                    if open_item is None or open_item["type"] != kind:
                        for opened in open_new(kind):
                            yield opened
                    assert open_item is not None  # open_new opened it, or it was open already
                    texts.append(text)
                    name = "reasoning_text" if kind == "reasoning" else "output_text"
                    yield event(
                        f"response.{name}.delta",
                        item_id=open_item["id"],
                        output_index=len(items) - 1,
                        content_index=0,
                        delta=text,
                    )
        if not items or items[-1]["type"] != "message":
            for opened in open_new("message"):
                yield opened
        for done in close_item():
            yield done
        status = "completed" if finish != "length" else "incomplete"
        items[-1]["status"] = status
        final = self.envelope(status, items, usage, finish, strategy)
        yield event(f"response.{status}", response=final)


def reasoning_item(item_id: str, text: str, status: str) -> dict:
    return {
        "id": item_id,
        "type": "reasoning",
        "summary": [],
        "content": [{"type": "reasoning_text", "text": text}],
        "status": status,
    }


def message_item(item_id: str, text: str, status: str) -> dict:
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }


def responses_usage(usage: dict) -> dict:
    return {
        "input_tokens": usage["prompt_tokens"],
        "input_tokens_details": usage["prompt_tokens_details"],
        "output_tokens": usage["completion_tokens"],
        "output_tokens_details": usage["completion_tokens_details"],
        "total_tokens": usage["total_tokens"],
    }
