"""ASGI middleware: the x-workload-id header of a request, for the request log to read."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import Receive, Scope, Send

from ponder.openai.request_log import WORKLOAD_HEADER, workload_header

_HEADER = WORKLOAD_HEADER.encode()
_MAX_LENGTH = 256


class WorkloadHeader:
    def __init__(self, app: Callable):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        value = None
        if scope["type"] == "http":
            value = next((v for k, v in scope.get("headers", ()) if k == _HEADER), None)
        if value is None:
            await self.app(scope, receive, send)
            return
        token = workload_header.set(value.decode("latin-1")[:_MAX_LENGTH])
        try:
            await self.app(scope, receive, send)
        finally:
            workload_header.reset(token)
