"""The router's HTTP front end: the OpenAI routes, proxied (streams included) to the replica the
policy picks; /health, /metrics (router + per-replica gauges), /replicas and its admin routes."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from ponder.router.balancer import NoReplicaError
from ponder.router.metrics import CONTENT_TYPE
from ponder.router.service import RouterService

PROXIED = ("/v1/chat/completions", "/v1/completions", "/v1/responses")


def _error(status: int, message: str, code: str) -> JSONResponse:
    body = {"error": {"message": message, "type": "server_error", "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers={"Retry-After": "1"})


def error_event(path: str) -> bytes:
    """What a stream gets when its replica dies after tokens were sent: a clear in-band error,
    then the end of the stream (the client sees a failure, never a hang or a silent cut)."""
    error = {
        "message": "the replica serving this stream failed; retry the request",
        "type": "server_error",
        "param": None,
        "code": "replica_failed",
    }
    if path == "/v1/responses":
        return b"event: error\ndata: " + json.dumps({"type": "error", **error}).encode() + b"\n\n"
    return b"data: " + json.dumps({"error": error}).encode() + b"\n\ndata: [DONE]\n\n"


class ManagedService(Protocol):
    async def start(self) -> None: ...
    async def drain_and_wait(self, timeout_s: float) -> None: ...
    async def shutdown(self) -> None: ...


def service_lifespan(
    service: ManagedService, manage: bool
) -> Callable[[FastAPI], AbstractAsyncContextManager]:
    """The app's lifespan: start the service's workers, and on the way out drain, then stop them."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage:
            await service.start()
        yield
        if manage:
            await service.drain_and_wait(timeout_s=60.0)
            await service.shutdown()

    return lifespan


def build_router_app(service: RouterService, *, manage_lifecycle: bool = True) -> FastAPI:
    """manage_lifecycle: start the replicas when the app starts and stop them when it stops."""

    app = FastAPI(title="ponder router", lifespan=service_lifespan(service, manage_lifecycle))
    app.state.service = service

    async def proxy(request: Request) -> Response:
        if service.draining:
            return _error(503, "the router is draining; retry on another instance", "draining")
        path = request.url.path
        try:
            upstream = await service.open(path, await request.body(), dict(request.headers))
        except NoReplicaError as error:
            return _error(503, str(error), "no_replica")
        return StreamingResponse(
            service.relay(upstream, error_event(path)),
            status_code=upstream.status_code,
            headers=upstream.headers,
        )

    for path in PROXIED:
        app.add_api_route(path, proxy, methods=["POST"], include_in_schema=False)

    @app.get("/health")
    async def health() -> Response:
        if service.draining:
            return _error(503, "draining", "draining")
        if not any(r.available for r in service.replicas):
            return _error(503, "no healthy replica", "no_replica")
        return JSONResponse({"status": "ok"})

    @app.get("/v1/models")
    async def models(request: Request) -> Response:
        for replica, handle in zip(service.replicas, service.handles):
            if replica.available:
                answer = await service.client.get(
                    handle.url + "/v1/models", headers=_auth(request), timeout=10.0
                )
                return Response(answer.content, answer.status_code, media_type="application/json")
        return _error(503, "no healthy replica", "no_replica")

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/replicas")
    async def replicas() -> dict:
        return {
            "data": [
                {
                    "index": r.index,
                    "name": r.name,
                    "url": h.url,
                    "pid": getattr(h, "pid", None),
                    "healthy": r.healthy,
                    "role": r.role,
                    "state": health.state,
                    "restarts": health.restarts,
                    "draining": r.draining,
                    "in_flight": r.in_flight,
                    "routed": r.routed,
                    "cached_blocks": len(r.prefix.stored),
                }
                for r, h, health in zip(service.replicas, service.handles, service.health)
            ]
        }

    @app.get("/replicas/{index}/metrics")
    async def replica_metrics(index: int, request: Request) -> Response:
        if not 0 <= index < len(service.handles):
            return _error(404, f"no replica {index}", "not_found")
        answer = await service.client.get(
            service.handles[index].url + "/metrics", headers=_auth(request), timeout=10.0
        )
        return Response(answer.content, answer.status_code, media_type=CONTENT_TYPE)

    @app.post("/replicas/{index}/drain")
    async def drain_replica(index: int, timeout: float = 60.0) -> Response:
        if not 0 <= index < len(service.handles):
            return _error(404, f"no replica {index}", "not_found")
        await service.drain_replica(index, timeout)
        return JSONResponse({"drained": service.replicas[index].name})

    return app


def _auth(request: Request) -> dict[str, str]:
    key = request.headers.get("authorization")
    return {"authorization": key} if key else {}
