"""Every failure as an OpenAI-shaped error: {"error": {"message", "type", "param", "code"}}."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ponder.errors import InvalidRequestError, PonderError, PromptTooLongError

logger = logging.getLogger("ponder.server")


@dataclass
class APIError(Exception):
    """An error response: HTTP status plus OpenAI's error object."""

    status_code: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message

    def body(self) -> dict:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def model_not_found(model: str, served: tuple[str, ...]) -> APIError:
    return APIError(
        404,
        f"The model {model!r} does not exist; this server serves {', '.join(map(repr, served))}",
        param="model",
        code="model_not_found",
    )


def invalid_api_key() -> APIError:
    return APIError(
        401,
        "Invalid or missing API key; send it as the header 'Authorization: Bearer <key>'",
        code="invalid_api_key",
    )


def queue_full(limit: int, retry_after_s: int) -> APIError:
    return APIError(
        429,
        f"The server is at capacity ({limit} sequences running or waiting); retry shortly",
        type="requests",
        code="rate_limit_exceeded",
        headers={"Retry-After": str(retry_after_s)},
    )


def draining() -> APIError:
    return APIError(
        503,
        "The server is shutting down and accepts no new requests",
        type="server_error",
        code="shutting_down",
    )


def unsupported(param: str, message: str) -> APIError:
    return APIError(400, message, param=param, code="unsupported_parameter")


def from_exception(error: BaseException) -> APIError:
    """The API error for anything a handler raised; unknown exceptions become a logged 500."""
    if isinstance(error, APIError):
        return error
    if isinstance(error, PromptTooLongError):
        return APIError(400, error.message, param=error.param, code="context_length_exceeded")
    if isinstance(error, InvalidRequestError):
        return APIError(400, error.message, param=error.param)
    if isinstance(error, PonderError):
        logger.error("request failed: %s", error)
        return APIError(500, f"The engine failed: {error}", type="server_error")
    logger.error("internal error", exc_info=error)
    return APIError(500, "Internal server error; the server log has the details", type="server_error")


def _not_an_object(body: object) -> str:
    if isinstance(body, str | bytes):  # FastAPI passes a body it did not parse as JSON through
        return "The request body must be a JSON object sent with the header 'Content-Type: application/json'"
    return f"The request body must be a JSON object, not {type(body).__name__}"


def from_validation_errors(errors: Sequence[Mapping[str, Any]]) -> APIError:
    """A 400 (not FastAPI's 422) that names the first bad field the way OpenAI does."""
    if not errors:
        return APIError(400, "The request body is invalid")
    first = errors[0]
    param = _param_of(first)
    # A union field fails once per member type: report those together, as one problem.
    same_field = [error for error in errors if _within(_param_of(error), param)]
    errors = [first, *(error for error in errors if not _within(_param_of(error), param))]
    if len(same_field) > 1:
        reasons = dict.fromkeys(error.get("msg", "invalid") for error in same_field)
        first = {**first, "msg": ", or ".join(reasons)}
    kind = first.get("type", "")
    if kind == "extra_forbidden":
        message = f"Unrecognized request argument supplied: {param}"
    elif kind in ("json_invalid", "json_type"):
        message = f"The request body is not valid JSON: {first.get('msg', '')}"
        param = None
    elif kind == "missing" and param is None:
        message = "The request body is empty; send the request as a JSON object"
    elif kind in ("model_attributes_type", "dict_type") and param is None:
        message = _not_an_object(first.get("input"))
    elif kind == "missing":
        message = f"Missing required parameter: {param!r}"
    else:
        message = (
            f"Invalid value for {param!r}: {first.get('msg', 'invalid')}"
            if param
            else (f"Invalid request body: {first.get('msg', 'invalid')}")
        )
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return APIError(400, message, param=param, code="invalid_value" if param else None)


_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "none", "dict", "list"})


def _param_of(error: Mapping[str, Any]) -> str | None:
    """The dotted field path, without "body" and without pydantic's union-member tags."""
    parts = [
        str(part)
        for part in error.get("loc", ())
        if part != "body"
        and not (isinstance(part, str) and (part in _TYPE_TAGS or "[" in part or "-" in part))
    ]
    return ".".join(parts) or None


def _within(param: str | None, parent: str | None) -> bool:
    if param is None or parent is None:
        return param == parent
    return param == parent or param.startswith(parent + ".")
