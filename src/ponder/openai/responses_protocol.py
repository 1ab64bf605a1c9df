"""/v1/responses request body, and its translation to a chat completion request.

The Responses API is served by the chat path: `input` items become chat messages (reasoning
items sent back attach to the assistant message that follows them, function calls and their
outputs become tool calls and tool messages), `instructions` a system message, and
`reasoning.effort` the same thinking budget as `reasoning_effort`, and `reasoning_strategy`
runs a strategy as on chat.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ponder.errors import InvalidRequestError
from ponder.openai import errors
from ponder.openai.protocol import (
    INT64_MAX,
    INT64_MIN,
    MAX_MESSAGES,
    MAX_TOKEN_ID,
    ChatCompletionRequest,
    Metadata,
    StrategyField,
    StreamOptions,
    Tools,
)
from ponder.openai.structured_format import response_format_of_text

_STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)
TEXT_PARTS = ("input_text", "output_text", "reasoning_text", "text")


class ReasoningOptions(BaseModel):
    model_config = _STRICT
    effort: str | None = None
    summary: str | None = None  # ponder returns the full reasoning text, never a summary
    generate_summary: str | None = None


class ResponsesRequest(BaseModel):
    model_config = _STRICT

    model: str
    input: str | Annotated[list[dict[str, Any]], Field(max_length=MAX_MESSAGES)]
    instructions: str | None = None
    max_output_tokens: int | None = Field(None, ge=1, le=MAX_TOKEN_ID)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    reasoning: ReasoningOptions | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    tools: Tools | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    previous_response_id: str | None = None
    background: bool | None = None
    # no effect on a self-hosted model
    store: bool | None = None
    metadata: Metadata | None = None
    user: str | None = None
    include: Annotated[list[str], Field(max_length=16)] | None = None
    text: dict[str, Any] | None = None
    truncation: str | None = None
    service_tier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    safety_identifier: str | None = None
    max_tool_calls: int | None = None
    # vLLM / ponder extensions
    top_k: int | None = Field(None, ge=-1, le=MAX_TOKEN_ID)
    min_p: float | None = Field(None, ge=0, le=1)
    seed: int | None = Field(None, ge=INT64_MIN, le=INT64_MAX)
    ignore_eos: bool = False
    thinking_budget: int | None = Field(None, ge=1, le=MAX_TOKEN_ID)
    include_reasoning: bool = True
    reasoning_strategy: StrategyField = None


def to_chat_request(request: ResponsesRequest) -> ChatCompletionRequest:
    if request.previous_response_id is not None:
        raise errors.unsupported(
            "previous_response_id",
            "previous_response_id is not supported (ponder stores no responses); send the "
            "conversation in input",
        )
    if request.background:
        raise errors.unsupported("background", "background responses are not supported")
    messages = [{"role": "system", "content": request.instructions}] if request.instructions else []
    messages += input_messages(request.input)
    fields: dict[str, Any] = {
        "model": request.model,
        "messages": messages,
        "max_completion_tokens": request.max_output_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "top_k": request.top_k,
        "min_p": request.min_p,
        "seed": request.seed,
        "ignore_eos": request.ignore_eos,
        "thinking_budget": request.thinking_budget,
        "include_reasoning": request.include_reasoning,
        "reasoning_output": "separate",  # Responses carries the thought as its own output item
        "reasoning_strategy": request.reasoning_strategy,
        "reasoning_effort": request.reasoning.effort if request.reasoning else None,
        "tools": [_chat_tool(tool) for tool in request.tools] if request.tools else None,
        "tool_choice": request.tool_choice if isinstance(request.tool_choice, str) else None,
        "response_format": response_format_of_text(request.text),
        "stream": bool(request.stream),
        "stream_options": {"include_usage": True} if request.stream else None,
    }
    try:
        return ChatCompletionRequest.model_validate(
            {key: value for key, value in fields.items() if value is not None}
        )
    except ValidationError as error:
        api_error = errors.from_validation_errors(list(error.errors()))
        if api_error.param and api_error.param.startswith("messages"):
            api_error.param = "input"
        raise api_error from None


def input_messages(items: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    messages: list[dict[str, Any]] = []
    pending_reasoning: list[str] = []
    for index, item in enumerate(items):
        kind = item.get("type", "message")
        if kind == "message":
            message = {"role": item.get("role"), "content": _text_of(item.get("content"), index)}
            if message["role"] == "assistant" and pending_reasoning:
                message["reasoning"] = "\n".join(pending_reasoning)
            pending_reasoning = []
            messages.append(message)
        elif kind == "reasoning":
            pending_reasoning.append(_text_of(item.get("content") or [], index))
        elif kind == "function_call":
            call = {
                "id": item.get("call_id"),
                "type": "function",
                "function": {"name": item.get("name"), "arguments": item.get("arguments", "")},
            }
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = _text_of(item.get("output"), index)
            messages.append({"role": "tool", "tool_call_id": item.get("call_id"), "content": output})
        else:
            raise InvalidRequestError(
                f"input[{index}] has type {kind!r}; supported: message, reasoning, "
                "function_call, function_call_output",
                param="input",
            )
    return messages


def _text_of(content: object, index: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") not in TEXT_PARTS:
                raise InvalidRequestError(
                    f"input[{index}].content parts must be input_text, output_text or "
                    "reasoning_text (this model takes text only)",
                    param="input",
                )
            if not isinstance(part.get("text"), str):
                raise InvalidRequestError(f"input[{index}] has a part without text", "input")
            texts.append(part["text"])
        return "".join(texts)
    raise InvalidRequestError(
        f"input[{index}].content must be a string or a list of text parts", param="input"
    )


def _chat_tool(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type") != "function" or "function" in tool:
        return tool
    function = {key: tool[key] for key in ("name", "description", "parameters") if key in tool}
    return {"type": "function", "function": function}
