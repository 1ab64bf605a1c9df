"""The disaggregated router's /v1/models asks a decode worker with the caller's Authorization
header, so a worker started with --api-key answers the caller instead of a 401."""

import httpx
from fastapi.testclient import TestClient

from ponder.router.disagg import DisaggService, WorkerRegistry
from ponder.router.disagg_app import build_disagg_app
from ponder.router.policies import RoundRobin
from ponder.router.prompts import PromptReader
from ponder.router.replicas import ExternalWorker


def test_models_forwards_the_authorization_header_to_the_decode_worker():
    seen: list[str | None] = []

    def worker(request: httpx.Request) -> httpx.Response:  # a decode worker started with --api-key k
        seen.append(request.headers.get("authorization"))
        if request.headers.get("authorization") != "Bearer k":
            return httpx.Response(401, json={"error": {"message": "bad key", "code": "invalid_api_key"}})
        return httpx.Response(200, json={"object": "list", "data": [{"id": "ponder", "object": "model"}]})

    registry = WorkerRegistry()
    registry.add("decode", ExternalWorker("decode-0", "http://decode.test")).state.healthy = True
    service = DisaggService(registry, RoundRobin(), RoundRobin(), PromptReader(None))
    service.client = httpx.AsyncClient(transport=httpx.MockTransport(worker))
    with TestClient(build_disagg_app(service, manage_lifecycle=False)) as client:
        answer = client.get("/v1/models", headers={"Authorization": "Bearer k"})
        assert answer.status_code == 200 and answer.json()["data"][0]["id"] == "ponder"
        assert client.get("/v1/models").status_code == 401
    assert seen == ["Bearer k", None]
