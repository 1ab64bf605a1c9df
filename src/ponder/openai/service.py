"""OpenAIService: the OpenAI API without a transport. One start per endpoint, and the one place
where a request becomes a plain generation or a reasoning-strategy run; the FastAPI app
(ponder.server) and the in-process callers (`ponder chat`, `ponder batch`) both go through it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence

from pydantic import ValidationError

from ponder.flywheel.store import RequestLogStore
from ponder.openai import errors
from ponder.openai.call import Call
from ponder.openai.generation import EngineClient
from ponder.openai.hosting import HostedModel, ModelRouter, ServedModel
from ponder.openai.metrics import ServerMetrics
from ponder.openai.protocol import ChatCompletionRequest, CompletionRequest
from ponder.openai.request_log import LoggedCall
from ponder.openai.responses import ResponseRun
from ponder.openai.responses_protocol import ResponsesRequest, to_chat_request
from ponder.openai.settings import ServerSettings
from ponder.openai.structured_format import text_format_errors

CHAT_URL = "/v1/chat/completions"
COMPLETIONS_URL = "/v1/completions"
RESPONSES_URL = "/v1/responses"
REQUEST_MODELS: dict[str, type[ChatCompletionRequest | CompletionRequest | ResponsesRequest]] = {
    CHAT_URL: ChatCompletionRequest,
    COMPLETIONS_URL: CompletionRequest,
    RESPONSES_URL: ResponsesRequest,
}


class OpenAIService:
    def __init__(
        self,
        models: Sequence[HostedModel],
        settings: ServerSettings,
        metrics: ServerMetrics | None = None,
        request_log: RequestLogStore | None = None,
    ):
        self.router = ModelRouter(models, settings, metrics)
        self.request_log = request_log  # the flywheel's log of served calls (None: not logged)
        self.settings = settings
        self.started = int(time.time())

    @classmethod
    def for_engine(cls, engine: EngineClient, settings: ServerSettings) -> OpenAIService:
        """One model, the one `settings` names: what `ponder chat` and `ponder batch` serve."""
        return cls([HostedModel.primary(engine, settings)], settings)

    def list_models(self) -> dict:
        """/v1/models: every served name of every hosted model."""
        cards = [self._card(served, name) for served in self.router.models for name in served.hosted.names]
        return {"object": "list", "data": cards}

    def model_card(self, name: str) -> dict:
        """/v1/models/{name}, or 404 listing the served names."""
        return self._card(self.router.route(name), name)

    def _card(self, served: ServedModel, name: str) -> dict:
        return {
            "id": name,
            "object": "model",
            "created": self.started,
            "owned_by": "ponder",
            "root": served.hosted.path or served.name,
            "parent": None,
            "max_model_len": served.engine.max_model_len,
        }

    async def start(self, request: ChatCompletionRequest | CompletionRequest | ResponsesRequest) -> Call:
        """Plain or strategy, decided here and nowhere else; raises API or typed errors
        before anything is queued.

        The prompt is rendered and tokenized in a worker thread: a huge prompt must not stall
        every other stream (and /health) on the event loop. Queueing stays on the loop."""
        if isinstance(request, ResponsesRequest):
            with text_format_errors():  # structured-output errors name text.format
                return ResponseRun(request, await self.start(to_chat_request(request)))
        served = self.router.route(request.model)
        served.open_calls += 1  # until the call closes: a promotion stops this engine after
        try:
            call = await self._start_on(served, request)
        except BaseException:
            served.open_calls -= 1
            raise
        return LoggedCall(call, request, served, self.request_log)

    async def _start_on(
        self, served: ServedModel, request: ChatCompletionRequest | CompletionRequest
    ) -> Call:
        if isinstance(request, ChatCompletionRequest) and request.reasoning_output is None:
            request = request.model_copy(update={"reasoning_output": self.settings.reasoning_output})
        if request.reasoning_strategy is not None:
            strategies = served.strategies
            return strategies.start(request, await asyncio.to_thread(strategies.prepare, request))
        if isinstance(request, ChatCompletionRequest):
            return served.chat.start(request, await asyncio.to_thread(served.chat.prepare, request))
        completions = served.completions
        return completions.start(request, await asyncio.to_thread(completions.prepare, request))

    # ---- in-process callers: a JSON body in, response bodies out, as over HTTP ------------

    async def call(self, url: str, body: object) -> tuple[int, dict]:
        """(HTTP status, response body) for a non-streaming request to `url`."""
        try:
            if isinstance(body, dict) and body.get("stream"):
                raise errors.APIError(400, "stream must be false here", param="stream")
            call = await self.start(parse_body(url, body))
            try:
                return 200, await call.respond()
            finally:
                call.close()
        except Exception as exc:
            error = errors.from_exception(exc)
            return error.status_code, error.body()

    async def stream(self, url: str, body: dict) -> AsyncIterator[dict]:
        """The chunks (or Responses events) the server would stream; raises APIError."""
        call = await self.start(parse_body(url, {**body, "stream": True}))
        try:
            async for chunk in call.stream():
                yield chunk
        finally:
            call.close()


def parse_body(url: str, body: object) -> ChatCompletionRequest | CompletionRequest | ResponsesRequest:
    """Validate a JSON body against the request model of `url`; a 400 naming the field."""
    model = REQUEST_MODELS.get(url)
    if model is None:
        raise errors.APIError(
            404, f"url must be one of {', '.join(REQUEST_MODELS)}; got {url!r}", param="url"
        )
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise errors.from_validation_errors(list(error.errors())) from None
