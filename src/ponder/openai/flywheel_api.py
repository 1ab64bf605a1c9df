"""The flywheel's endpoints without a transport: POST /v1/feedback (a score for a logged
response) and POST /admin/models/promote (serve a new model version with no dropped request)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from ponder.errors import PonderError
from ponder.flywheel.store import RequestLogStore
from ponder.openai import errors
from ponder.openai.generation import EngineClient
from ponder.openai.hosting import HostedModel, ModelRouter, ServedModel

logger = logging.getLogger("ponder.flywheel")
_STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)
_Text = Annotated[str, Field(min_length=1, max_length=4096)]


class FeedbackRequest(BaseModel):
    model_config = _STRICT
    response_id: _Text
    score: float = Field(ge=0.0, le=1.0, description="0 (bad) to 1 (good)")


class PromoteRequest(BaseModel):
    model_config = _STRICT
    path: _Text = Field(description="the checkpoint directory of the new version")
    version: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    model: Annotated[str, Field(min_length=1, max_length=256)] | None = None  # default: the primary


async def record_feedback(store: RequestLogStore | None, request: FeedbackRequest) -> dict:
    if store is None:
        raise errors.APIError(
            400, "request logging is off; start the server with --log-requests to take feedback"
        )
    found = await asyncio.wrap_future(store.feedback(request.response_id, request.score))
    if not found:
        raise errors.APIError(
            404, f"no logged response has the id {request.response_id!r}", param="response_id"
        )
    return {"object": "feedback", "response_id": request.response_id, "score": request.score}


class ModelPromoter:
    """Swaps the engine behind a served name: new requests go to the new version at once,
    requests already started finish on the old one, which is stopped once they have."""

    def __init__(
        self,
        router: ModelRouter,
        load_engine: Callable[[str], EngineClient] | None,
        drain_timeout_s: float = 600.0,
        on_swap: Callable[[ServedModel], None] | None = None,
    ):
        self.router = router
        self.load_engine = load_engine
        self.drain_timeout_s = drain_timeout_s
        self.on_swap = on_swap
        self._lock = asyncio.Lock()
        self._retiring: set[asyncio.Task] = set()

    async def promote(self, request: PromoteRequest) -> dict:
        if self.load_engine is None:
            raise errors.APIError(400, "this server cannot load models (promotion needs `ponder serve`)")
        current = self.router.route(request.model or self.router.primary.name)
        async with self._lock:  # one promotion at a time; requests keep flowing meanwhile
            current = self.router.route(current.name)  # the version now served, after a wait
            started = time.monotonic()
            try:
                engine = await asyncio.to_thread(self.load_engine, request.path)
            except PonderError as error:
                raise errors.APIError(400, f"cannot load {request.path!r}: {error}", param="path") from None
            version = request.version or _next_version(current.hosted.version)
            hosted = HostedModel(engine, current.hosted.names, request.path, version)
            served = self.router.swap(current, hosted)
            if self.on_swap is not None:
                self.on_swap(served)
            task = asyncio.create_task(self._retire(current))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        logger.warning(
            "promoted %r: version %s -> %s (%s)", served.name, current.hosted.version, version, request.path
        )
        return {
            "object": "promotion",
            "model": served.name,
            "version": version,
            "previous_version": current.hosted.version,
            "path": request.path,
            "load_s": round(time.monotonic() - started, 3),
        }

    async def _retire(self, old: ServedModel) -> None:
        """Stop the old engine once no call started on it is open (or the drain timeout passed)."""
        deadline = time.monotonic() + self.drain_timeout_s
        while (old.open_calls or old.context.admission.in_flight) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        shutdown = getattr(old.engine, "shutdown", None)
        if shutdown is not None:
            await shutdown()

    async def wait_retired(self) -> None:
        """Until every replaced engine has stopped (tests, shutdown)."""
        while self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)


def _next_version(version: str) -> str:
    """v1 -> v2; anything else gets '+1' appended."""
    if version.startswith("v") and version[1:].isdigit():
        return f"v{int(version[1:]) + 1}"
    return f"{version}+1"
