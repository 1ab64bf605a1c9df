"""HTTP plumbing under the routes: safe JSON, SSE, disconnect watching, and the API-key guard."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from ponder.openai import errors
from ponder.openai.encoding import dumps


class JSONBody(JSONResponse):
    """JSON that never fails on NaN or odd types (and that OpenAPI documents as JSON)."""

    def render(self, content: Any) -> bytes:
        return dumps(content)


def error_response(error: errors.APIError) -> JSONBody:
    return JSONBody(error.body(), status_code=error.status_code, headers=error.headers)


async def sse_events(chunks: AsyncIterator[dict]) -> AsyncIterator[bytes]:
    """Server-sent events; a failure mid-stream becomes an error event, then [DONE]."""
    try:
        async for chunk in chunks:
            yield b"data: " + dumps(chunk) + b"\n\n"
    except Exception as error:  # the status line is gone: report it in-band, as vLLM does
        yield b"data: " + dumps(errors.from_exception(error).body()) + b"\n\n"
    yield b"data: [DONE]\n\n"


async def named_sse_events(events: AsyncIterator[dict]) -> AsyncIterator[bytes]:
    """Server-sent events named by their `type` (the Responses API style; no [DONE])."""
    try:
        async for event in events:
            yield b"event: " + event["type"].encode() + b"\ndata: " + dumps(event) + b"\n\n"
    except Exception as error:
        body = errors.from_exception(error).body()["error"]
        yield b"event: error\ndata: " + dumps({"type": "error", **body}) + b"\n\n"


class EventStream(StreamingResponse):
    """An SSE response that always runs `on_close` (abort + release), however it ends."""

    def __init__(
        self,
        chunks: AsyncIterator[dict],
        on_close: Callable[[], None],
        encode: Callable[[AsyncIterator[dict]], AsyncIterator[bytes]] = sse_events,
    ):
        super().__init__(
            encode(chunks),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self._chunks = chunks
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()
            await _close_quietly(self.body_iterator)
            await _close_quietly(self._chunks)


class ClientGone(Exception):
    """The client disconnected before its (non-streaming) response was ready."""


async def until_disconnected(request: Request, work: Awaitable[Any]) -> Any:
    """Await `work`, cancelling it if the client disconnects first."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_wait_for_disconnect(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if task.done():
        return task.result()
    task.cancel()
    try:
        await task
    except BaseException:  # cancelled, or it failed while being cancelled: either way, gone
        pass
    raise ClientGone()


async def _wait_for_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def _close_quietly(iterator: Any) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception:
            pass


class APIKeyGuard:
    """ASGI middleware: /v1 and /admin routes (and /metrics, when asked) need `Authorization: Bearer <key>`
    (before body parsing, so an unauthenticated client learns nothing from validation errors)."""

    def __init__(self, app: Callable, api_key: str | None, protect_metrics: bool = False):
        self.app = app
        self.api_key = api_key
        self.protect_metrics = protect_metrics

    def _guarded(self, path: str) -> bool:
        return path.startswith(("/v1", "/admin")) or (self.protect_metrics and path == "/metrics")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.api_key
            and scope["type"] == "http"
            and self._guarded(scope["path"])
            and scope.get("method") != "OPTIONS"
            and not self._authorized(scope)
        ):
            await error_response(errors.invalid_api_key())(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                return scheme.lower() == "bearer" and secrets.compare_digest(
                    token.strip().encode(), self.api_key.encode()
                )
        return False


class ResponseCounter:
    """ASGI middleware: counts every response by route and status, however it was produced
    (a route, an error handler, a guard that answered before the app)."""

    def __init__(self, app: Callable, count: Callable[[str, int], None], routes: frozenset[str]):
        self.app = app
        self.count = count
        self.routes = routes  # anything else is "other", so unknown paths cannot grow the series

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = scope["path"] if scope["path"] in self.routes else "other"

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.count(route, message["status"])
            await send(message)

        await self.app(scope, receive, counted)
