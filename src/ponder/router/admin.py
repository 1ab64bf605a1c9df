"""The routers' admin HTTP API over a worker registry (colocated or disaggregated router):

    GET    /admin/workers                 the workers (id, role, url, state, load, restarts)
    POST   /admin/workers                 {"role": "decode", "url"?: ..., "args"?: [...]}: add one
    DELETE /admin/workers/{id}?timeout=S  drain it (no abort), then stop and remove it

Guarded by the replicas' --api-key when one is set (a bearer token), like the OpenAI routes."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response

from ponder.errors import InvalidRequestError
from ponder.router.registry import WorkerAdmin, WorkerNotFoundError, WorkerStartError


def _error(status: int, message: str, code: str, param: str | None = None) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


def install_admin_routes(
    app: FastAPI, registry: WorkerAdmin, api_key: str | None = None, default_role: str = "colocated"
) -> None:
    def denied(request: Request) -> Response | None:
        if api_key is None:
            return None
        given = request.headers.get("authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
            return None
        return _error(401, "missing or wrong API key", "invalid_api_key")

    @app.get("/admin/workers")
    async def list_workers(request: Request, include_removed: bool = False) -> Response:
        if (refused := denied(request)) is not None:
            return refused
        return JSONResponse({"data": [w.to_json() for w in registry.list(include_removed)]})

    @app.post("/admin/workers")
    async def add_worker(request: Request) -> Response:
        if (refused := denied(request)) is not None:
            return refused
        try:
            body: Any = await request.json()
        except ValueError:
            return _error(400, "the body must be a JSON object", "invalid_json")
        if not isinstance(body, dict):
            return _error(400, "the body must be a JSON object", "invalid_json")
        unknown = set(body) - {"role", "url", "args", "ready_timeout"}
        if unknown:
            return _error(400, f"unknown field(s): {', '.join(sorted(unknown))}", "invalid_field")
        role, timeout = body.get("role", default_role), body.get("ready_timeout", 300.0)
        if not isinstance(role, str) or not isinstance(timeout, int | float):
            return _error(400, "role must be a string and ready_timeout a number", "invalid_field")
        url = body.get("url")
        if url is not None and not isinstance(url, str):
            return _error(400, "url must be a string", "invalid_field", "url")
        args = body.get("args", [])
        if not isinstance(args, list):
            return _error(400, "args must be a list of strings", "invalid_field", "args")
        try:
            info = await registry.add(role, url, args, float(timeout))
        except InvalidRequestError as error:
            return _error(400, error.message, "invalid_request", error.param)
        except WorkerStartError as error:
            return _error(503, str(error), "worker_failed")
        return JSONResponse(info.to_json(), status_code=201)

    @app.delete("/admin/workers/{worker_id}")
    async def remove_worker(worker_id: str, request: Request, timeout: float = 60.0) -> Response:
        if (refused := denied(request)) is not None:
            return refused
        try:
            info = await registry.remove(worker_id, timeout)
        except WorkerNotFoundError as error:
            return _error(404, str(error), "not_found")
        except InvalidRequestError as error:
            return _error(400, error.message, "invalid_request", error.param)
        return JSONResponse({"removed": info.to_json()})
