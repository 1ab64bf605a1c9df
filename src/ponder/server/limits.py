"""Request-body bounds, enforced while the body streams in and before any parsing: one body may
not exceed `max_bytes` (413), and the bodies being held at once may not exceed `budget_bytes`
(503 with Retry-After), so a few huge requests cannot stall the event loop or grow the
server's memory without bound."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import Message, Receive, Scope, Send

from ponder.openai.errors import APIError
from ponder.server.http import error_response

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def body_too_large(limit: int) -> APIError:
    return APIError(
        413,
        f"The request body is larger than this server accepts ({limit} bytes); send a smaller "
        "request, or start the server with a larger --max-request-bytes",
        code="request_too_large",
    )


def bodies_over_budget(budget: int, retry_after_s: int) -> APIError:
    return APIError(
        503,
        f"The server is holding {budget} bytes of request bodies already; retry shortly",
        type="server_error",
        code="request_memory_exhausted",
        headers={"Retry-After": str(retry_after_s)},
    )


class RequestBodyLimit:
    """ASGI middleware: reads a body up to its bound, then replays it to the app. The bytes are
    reserved against the budget until the app has answered."""

    def __init__(self, app: Callable, max_bytes: int, budget_bytes: int, retry_after_s: int = 1):
        self.app = app
        self.max_bytes = max_bytes
        self.budget_bytes = budget_bytes
        self.retry_after_s = retry_after_s
        self.held_bytes = 0  # bodies read and not yet answered

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await error_response(body_too_large(self.max_bytes))(scope, receive, send)
            return
        chunks: list[bytes] = []
        reserved = 0
        try:
            more = True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                more = message.get("more_body", False)
                if reserved + len(chunk) > self.max_bytes:
                    await error_response(body_too_large(self.max_bytes))(scope, receive, send)
                    return
                if self.held_bytes + len(chunk) > self.budget_bytes:
                    error = bodies_over_budget(self.budget_bytes, self.retry_after_s)
                    await error_response(error)(scope, receive, send)
                    return
                self.held_bytes += len(chunk)
                reserved += len(chunk)
                chunks.append(chunk)
            await self.app(scope, _replay(b"".join(chunks), receive), send)
        finally:
            self.held_bytes -= reserved


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body as one message, then the client's own messages (a disconnect, for streams)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
