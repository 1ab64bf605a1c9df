"""The disaggregated router's HTTP front end: the OpenAI routes through DisaggService, /health,
/metrics, and the worker registry (/disagg/workers: list; restart one)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from ponder.router.app import PROXIED, _auth, _error, error_event, service_lifespan
from ponder.router.balancer import NoReplicaError
from ponder.router.disagg import DisaggService
from ponder.router.metrics import CONTENT_TYPE


def build_disagg_app(service: DisaggService, *, manage_lifecycle: bool = True) -> FastAPI:
    app = FastAPI(title="ponder disaggregated router", lifespan=service_lifespan(service, manage_lifecycle))
    app.state.service = service

    async def proxy(request: Request) -> Response:
        if service.draining:
            return _error(503, "the router is draining; retry on another instance", "draining")
        path = request.url.path
        try:
            upstream, _ = await service.open(path, await request.body(), dict(request.headers))
        except NoReplicaError as error:
            return _error(503, str(error), "no_replica")
        except httpx.TransportError as error:
            return _error(503, f"the decode worker failed: {type(error).__name__}", "replica_failed")
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
        for role in ("prefill", "decode"):
            if not any(w.state.available for w in service.registry.of_role(role)):
                return _error(503, f"no healthy {role} worker", "no_replica")
        return JSONResponse({"status": "ok"})

    @app.get("/v1/models")
    async def models(request: Request) -> Response:
        for worker in service.registry.of_role("decode"):
            if worker.state.available:
                answer = await service.client.get(
                    worker.url + "/v1/models", headers=_auth(request), timeout=10.0
                )
                return Response(answer.content, answer.status_code, media_type="application/json")
        return _error(503, "no healthy decode worker", "no_replica")

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/disagg/workers")
    async def workers() -> dict:
        return {
            "data": [
                {
                    "name": w.name,
                    "role": w.role,
                    "url": w.url,
                    "pid": getattr(w.handle, "pid", None),
                    "epoch": w.epoch,
                    "healthy": w.state.healthy,
                    "draining": w.state.draining,
                    "in_flight": w.state.in_flight,
                    "routed": w.state.routed,
                }
                for w in service.registry.workers.values()
            ]
        }

    @app.post("/disagg/workers/{name}/restart")
    async def restart(name: str) -> Response:
        if name not in service.registry.workers:
            return _error(404, f"no worker {name!r}", "not_found")
        worker = await service.restart_worker(name)
        return JSONResponse({"restarted": name, "epoch": worker.epoch})

    return app
