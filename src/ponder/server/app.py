"""The FastAPI app: OpenAI routes over the hosted models (one shared engine each), plus health,
version and metrics."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from ponder import __version__
from ponder.errors import PonderError
from ponder.server import errors
from ponder.server.generation import EngineClient
from ponder.server.hosting import HostedModel, ModelRouter, ServedModel
from ponder.server.http import (
    APIKeyGuard,
    ClientGone,
    EventStream,
    JSONBody,
    error_response,
    named_sse_events,
    until_disconnected,
)
from ponder.server.metrics import CONTENT_TYPE, ServerMetrics
from ponder.server.protocol import ChatCompletionRequest, CompletionRequest
from ponder.server.responses_protocol import ResponsesRequest
from ponder.server.settings import ServerSettings
from ponder.server.strategies import StrategyCall
from ponder.server.strategy_responses import strategy_response, strategy_stream

logger = logging.getLogger("ponder.server")

CLIENT_CLOSED_REQUEST = 499  # nginx's code; the client never sees it


def build_app(
    engine: EngineClient,
    settings: ServerSettings,
    *,
    more_models: Sequence[HostedModel] = (),
    shutdown_engine: bool = True,
) -> FastAPI:
    """The app for `engine` (served as settings.served_model_names) and `more_models`, each on
    its own engine; `shutdown_engine` stops the engines when the app shuts down."""
    models = [HostedModel(engine, settings.served_model_names, settings.model_path), *more_models]
    metrics = ServerMetrics({hosted.names[0]: hosted.engine.stats for hosted in models})
    router = ModelRouter(models, settings, metrics)
    started = int(time.time())

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        router.drain()
        if shutdown_engine:
            await router.shutdown()

    app = FastAPI(
        title="ponder",
        version=__version__,
        description="OpenAI-compatible server for reasoning models.",
        lifespan=lifespan,
        default_response_class=JSONBody,
    )
    app.state.router = router
    app.state.context = router.primary.context
    _install_error_handlers(app)
    app.add_middleware(APIKeyGuard, api_key=settings.api_key)

    @app.get("/health")
    async def health() -> Response:
        if router.draining:
            return error_response(errors.draining())
        return JSONBody({"status": "ok"})

    @app.get("/version")
    async def version() -> dict:
        return {"version": __version__}

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    def model_card(served: ServedModel, name: str) -> dict:
        return {
            "id": name,
            "object": "model",
            "created": started,
            "owned_by": "ponder",
            "root": served.hosted.path or served.name,
            "parent": None,
            "max_model_len": served.engine.max_model_len,
        }

    @app.get("/v1/models")
    async def list_models() -> dict:
        cards = [model_card(served, name) for served in router.models for name in served.hosted.names]
        return {"object": "list", "data": cards}

    @app.get("/v1/models/{model:path}")
    async def get_model(model: str) -> dict:
        return model_card(router.route(model), model)

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
        served = router.route(body.model)
        if body.reasoning_strategy is not None:
            return await _answer_strategy(request, served.strategies.start_chat(body), body.stream)
        run = served.chat.start(body)
        if body.stream:
            return EventStream(served.chat.stream(run), run.generation.close)
        return await _respond(request, served.chat.respond(run), run.generation.close)

    @app.post("/v1/completions")
    async def create_completion(body: CompletionRequest, request: Request) -> Response:
        served = router.route(body.model)
        if body.reasoning_strategy is not None:
            call = served.strategies.start_completion(body)
            return await _answer_strategy(request, call, body.stream)
        run = served.completions.start(body)
        if body.stream:
            return EventStream(served.completions.stream(run), run.generation.close)
        return await _respond(request, served.completions.respond(run), run.generation.close)

    @app.post("/v1/responses")
    async def create_response(body: ResponsesRequest, request: Request) -> Response:
        responses = router.route(body.model).responses
        run = responses.start(body)
        if body.stream:
            return EventStream(responses.stream(run), run.close, encode=named_sse_events)
        return await _respond(request, responses.respond(run), run.close)

    return app


async def _respond(request: Request, work: Awaitable[dict], close: Callable[[], None]) -> Response:
    try:
        return JSONBody(await until_disconnected(request, work))
    except ClientGone:
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    finally:
        close()


async def _answer_strategy(request: Request, call: StrategyCall, stream: bool | None) -> Response:
    if stream:  # progress while the strategy runs, then its decided answer
        return EventStream(strategy_stream(call), call.close)
    return await _respond(request, strategy_response(call), call.close)


def _install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(_: Request, error: Exception) -> Response:
        api_error = errors.from_exception(error)
        if api_error.status_code >= 500:
            logger.warning("request failed with %d: %s", api_error.status_code, api_error.message)
        return error_response(api_error)

    async def on_validation_error(_: Request, error: RequestValidationError) -> Response:
        return error_response(errors.from_validation_errors(list(error.errors())))

    async def on_http_error(_: Request, error: HTTPException) -> Response:
        kind = "invalid_request_error" if error.status_code < 500 else "server_error"
        message = str(error.detail) if error.detail else "error"
        if error.status_code == 404:
            message = "Not found: no such route; see /docs for the API"
        elif error.status_code == 405:
            message = "Method not allowed on this route"
        return error_response(
            errors.APIError(
                error.status_code, message, type=kind, headers=dict(error.headers or {})
            )
        )

    app.add_exception_handler(errors.APIError, on_api_error)
    app.add_exception_handler(PonderError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(Exception, on_api_error)
