"""What each route answers, as OpenAPI documents it: the success bodies' required core (extra
fields allowed, as OpenAI adds fields over time) and the one error body every failure uses, so
generated clients and schema checks (schemathesis, tests/e2e) see the real contract."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | int | None


class ErrorResponse(BaseModel):
    """Every 4xx/5xx: OpenAI's error envelope."""

    error: ErrorDetail


class ChatCompletionResponse(_Open):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[dict[str, Any]]
    usage: dict[str, Any] | None


class CompletionResponse(_Open):
    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[dict[str, Any]]
    usage: dict[str, Any] | None


class ResponseObject(_Open):
    id: str
    object: Literal["response"]
    created_at: int
    model: str
    status: str
    output: list[dict[str, Any]]


class ModelCard(_Open):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str
    max_model_len: int


class ModelList(_Open):
    object: Literal["list"]
    data: list[ModelCard]


class HealthStatus(BaseModel):
    status: Literal["ok"]


class VersionInfo(BaseModel):
    version: str


# One server-sent event (OpenAPI before 3.2 describes each event): a JSON chunk as `data`, or
# "[DONE]"; /v1/responses also names the event.
SSE_EVENT = {
    "type": "object",
    "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
    "required": ["data"],
}

_ERRORS = {
    400: "invalid request: the message names the field",
    401: "missing or wrong API key",
    404: "unknown model or route",
    413: "request body over --max-request-bytes",
    429: "queue full; retry after Retry-After seconds",
    500: "internal error; the engine keeps serving other requests",
    503: "draining, or request memory exhausted; retry after Retry-After seconds",
}
_DEFAULT_ERRORS = tuple(_ERRORS)
_ERRORS[403] = "admin routes are off: the server has no --api-key"


def documented(
    body: type[BaseModel] | None, *, stream: bool = False, errors: tuple[int, ...] = _DEFAULT_ERRORS
) -> dict[int | str, dict[str, Any]]:
    """FastAPI `responses=` for a route answering `body` (and SSE when `stream`) or an error.
    Declaring the errors also keeps FastAPI from advertising its 422, which ponder never sends
    (a body that fails validation is a 400, as OpenAI's)."""
    responses: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorResponse, "description": _ERRORS[code]} for code in errors
    }
    if body is not None:
        content: dict[str, Any] = {}
        if stream:
            content["text/event-stream"] = {"schema": SSE_EVENT}
        responses[200] = {"model": body, "content": content, "description": "success"}
    return responses
