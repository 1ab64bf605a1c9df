"""The OpenAI routes as coroutines without HTTP, for `ponder chat` and `ponder batch`: the same
validation, templates, reasoning split and response bodies as the server."""

from __future__ import annotations

from collections.abc import AsyncIterator

from pydantic import BaseModel, ValidationError

from ponder.server import errors
from ponder.server.generation import EngineClient
from ponder.server.hosting import HostedModel, ModelRouter
from ponder.server.protocol import ChatCompletionRequest, CompletionRequest
from ponder.server.settings import ServerSettings
from ponder.server.strategies import StrategyCall
from ponder.server.strategy_responses import strategy_response, strategy_stream

CHAT_URL = "/v1/chat/completions"
COMPLETIONS_URL = "/v1/completions"
SUPPORTED_URLS = (CHAT_URL, COMPLETIONS_URL)


class LocalAPI:
    def __init__(self, engine: EngineClient, settings: ServerSettings):
        self.router = ModelRouter(
            [HostedModel(engine, settings.served_model_names, settings.model_path)], settings
        )

    async def call(self, url: str, body: object) -> tuple[int, dict]:
        """(HTTP status, response body) for a non-streaming request to `url`."""
        try:
            if isinstance(body, dict) and body.get("stream"):
                raise errors.APIError(400, "stream must be false in a batch", param="stream")
            if url == CHAT_URL:
                chat_request = _parse(ChatCompletionRequest, body)
                served = self.router.route(chat_request.model)
                if chat_request.reasoning_strategy is not None:
                    return 200, await _run_strategy(served.strategies.start_chat(chat_request))
                return 200, await served.chat.respond(served.chat.start(chat_request))
            if url == COMPLETIONS_URL:
                request = _parse(CompletionRequest, body)
                served = self.router.route(request.model)
                if request.reasoning_strategy is not None:
                    return 200, await _run_strategy(served.strategies.start_completion(request))
                return 200, await served.completions.respond(served.completions.start(request))
            error = errors.APIError(
                404, f"url must be one of {', '.join(SUPPORTED_URLS)}; got {url!r}", param="url"
            )
        except Exception as exc:
            error = errors.from_exception(exc)
        return error.status_code, error.body()

    async def chat_stream(self, body: dict) -> AsyncIterator[dict]:
        """Chat completion chunks, as the server would stream them; raises APIError."""
        request = _parse(ChatCompletionRequest, {**body, "stream": True})
        served = self.router.route(request.model)
        if request.reasoning_strategy is not None:
            call = served.strategies.start_chat(request)
            try:
                async for chunk in strategy_stream(call):
                    yield chunk
            finally:
                call.close()
            return
        chat = served.chat
        run = chat.start(request)
        try:
            async for chunk in chat.stream(run):
                yield chunk
        finally:
            run.generation.close()


async def _run_strategy(call: StrategyCall) -> dict:
    try:
        return await strategy_response(call)
    finally:
        call.close()


def _parse(model: type[BaseModel], body: object) -> BaseModel:
    try:
        request = model.model_validate(body)
    except ValidationError as error:
        raise errors.from_validation_errors(list(error.errors())) from None
    return request
