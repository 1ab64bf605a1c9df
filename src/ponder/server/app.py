"""The FastAPI app: OpenAI routes over the hosted models (one shared engine each), plus health,
version and metrics."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse, Response

from ponder.engine.llm_engine import EngineStats
from ponder.errors import PonderError
from ponder.flywheel.store import RequestLogStore
from ponder.openai import errors
from ponder.openai.call import Call
from ponder.openai.flywheel_api import FeedbackRequest, ModelPromoter, PromoteRequest, record_feedback
from ponder.openai.generation import EngineClient
from ponder.openai.hosting import HostedModel, ModelRouter
from ponder.openai.metrics import CONTENT_TYPE, ServerMetrics
from ponder.openai.protocol import ChatCompletionRequest, CompletionRequest
from ponder.openai.response_schema import (
    ChatCompletionResponse,
    CompletionResponse,
    HealthStatus,
    ModelCard,
    ModelList,
    ResponseObject,
    VersionInfo,
    documented,
)
from ponder.openai.responses_protocol import ResponsesRequest
from ponder.openai.service import OpenAIService
from ponder.openai.settings import ServerSettings
from ponder.server.disagg import install_disagg_routes
from ponder.server.http import (
    APIKeyGuard,
    ClientGone,
    EventStream,
    JSONBody,
    ResponseCounter,
    error_response,
    named_sse_events,
    sse_events,
    until_disconnected,
)
from ponder.server.kv_events import kv_events_response
from ponder.server.limits import RequestBodyLimit
from ponder.server.workload import WorkloadHeader
from ponder.version import __version__

logger = logging.getLogger("ponder.server")

CLIENT_CLOSED_REQUEST = 499  # nginx's code; the client never sees it


COUNTED_ROUTES = frozenset(
    {"/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/models", "/health", "/metrics"}
)


def build_app(
    engine: EngineClient,
    settings: ServerSettings,
    *,
    more_models: Sequence[HostedModel] = (),
    shutdown_engine: bool = True,
    request_log: RequestLogStore | None = None,
    load_engine: Callable[[str], EngineClient] | None = None,
) -> FastAPI:
    """The app for `engine` (served as settings.served_model_names) and `more_models`, each on
    its own engine; `shutdown_engine` stops the engines when the app shuts down. `request_log`
    records every served call; `load_engine` (a checkpoint path -> engine) enables promotion."""
    models = [HostedModel.primary(engine, settings), *more_models]
    # Read through the router: a promotion replaces the engine behind a name.
    metrics = ServerMetrics({h.names[0]: _current_stats(lambda: service.router, h.names[0]) for h in models})
    service = OpenAIService(models, settings, metrics, request_log=request_log)
    router = service.router
    promoter = ModelPromoter(router, load_engine, settings.drain_timeout_s)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        router.drain()
        await promoter.wait_retired()
        if shutdown_engine:
            await router.shutdown()
        if request_log is not None:
            request_log.close()  # commits what is queued

    app = FastAPI(
        title="ponder",
        version=__version__,
        description="OpenAI-compatible server for reasoning models.",
        lifespan=lifespan,
        default_response_class=JSONBody,
    )
    app.state.router = router
    app.state.promoter = promoter
    app.state.context = router.primary.context
    _install_error_handlers(app)
    _document_errors_truthfully(app)
    # The last added runs first: the key is checked before a byte of the body is read.
    app.add_middleware(
        RequestBodyLimit,
        max_bytes=settings.max_request_bytes,
        budget_bytes=settings.request_body_budget_bytes,
        retry_after_s=settings.retry_after_s,
    )
    app.add_middleware(APIKeyGuard, api_key=settings.api_key, protect_metrics=settings.protect_metrics)
    app.add_middleware(WorkloadHeader)
    app.add_middleware(  # outermost: sees the guards' answers too
        ResponseCounter,
        count=lambda route, status: metrics.http_responses.labels(route, str(status)).inc(),
        routes=COUNTED_ROUTES,
    )

    @app.get("/health", response_model=None, responses=documented(HealthStatus, errors=(503,)))
    async def health() -> Response:
        if router.draining:
            return error_response(errors.draining())
        return JSONBody({"status": "ok"})

    @app.get("/version", response_model=None, responses=documented(VersionInfo, errors=()))
    async def version() -> dict:
        return {"version": __version__}

    @app.get("/metrics", response_class=PlainTextResponse, responses=documented(None, errors=(401,)))
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    install_disagg_routes(app, engine, metrics.registry, settings.role)

    @app.get("/kv_events", include_in_schema=False)
    async def kv_events(after: int = 0) -> Response:
        return kv_events_response(engine, after)

    @app.get("/v1/models", response_model=None, responses=documented(ModelList, errors=(401,)))
    async def list_models() -> dict:
        return service.list_models()

    @app.get(
        "/v1/models/{model:path}", response_model=None, responses=documented(ModelCard, errors=(401, 404))
    )
    async def get_model(model: str) -> dict:
        return service.model_card(model)

    @app.post("/v1/chat/completions", responses=documented(ChatCompletionResponse, stream=True))
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
        return await _answer(request, await service.start(body), body.stream)

    @app.post("/v1/completions", responses=documented(CompletionResponse, stream=True))
    async def create_completion(body: CompletionRequest, request: Request) -> Response:
        return await _answer(request, await service.start(body), body.stream)

    @app.post("/v1/responses", responses=documented(ResponseObject, stream=True))
    async def create_response(body: ResponsesRequest, request: Request) -> Response:
        return await _answer(request, await service.start(body), body.stream, encode=named_sse_events)

    @app.post("/v1/feedback", response_model=None, responses=documented(None, errors=(400, 401, 404)))
    async def feedback(body: FeedbackRequest) -> dict:
        return await record_feedback(request_log, body)

    @app.post(
        "/admin/models/promote", response_model=None, responses=documented(None, errors=(400, 401, 403, 404))
    )
    async def promote(body: PromoteRequest) -> dict:
        if not settings.api_key:
            raise errors.APIError(
                403, "admin routes need the server started with --api-key", code="forbidden"
            )
        return await promoter.promote(body)

    return app


def _current_stats(router: Callable[[], ModelRouter], name: str) -> Callable[[], EngineStats]:
    return lambda: router().route(name).engine.stats()


async def _answer(
    request: Request, call: Call, stream: bool | None, encode: Callable = sse_events
) -> Response:
    """A streamed or a whole response; the call is closed however the response ends."""
    if stream:
        return EventStream(call.stream(), call.close, encode=encode)
    try:
        return JSONBody(await until_disconnected(request, call.respond()))
    except ClientGone:
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    finally:
        call.close()


def _document_errors_truthfully(app: FastAPI) -> None:
    """FastAPI advertises a 422 on every route with a body; ponder answers a body that fails
    validation with a 400 (OpenAI's code), which each route documents instead."""

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            for operations in schema["paths"].values():
                for operation in operations.values():
                    operation["responses"].pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


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
            errors.APIError(error.status_code, message, type=kind, headers=dict(error.headers or {}))
        )

    app.add_exception_handler(errors.APIError, on_api_error)
    app.add_exception_handler(PonderError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(Exception, on_api_error)
