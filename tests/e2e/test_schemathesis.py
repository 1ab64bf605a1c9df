"""Property-based requests generated from the server's own OpenAPI schema: none gets a 5xx."""

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.server.harness import MODEL, real_engine, serve

OPERATIONS = [
    ("/v1/chat/completions", "POST", 30),
    ("/v1/completions", "POST", 30),
    ("/v1/responses", "POST", 20),
    ("/v1/models/{model}", "GET", 5),
]


def served_model(case):
    """Most generated model names are unknown (a 404 at once); use the served one instead,
    so the generated sampling fields reach the engine."""
    if isinstance(case.body, dict) and "model" in case.body:
        case.body["model"] = MODEL
    return case


@pytest.fixture(scope="module")
def small_server(qwen3_ckpt):
    # A short context bounds the work of any generated request (n x max_tokens).
    with serve(real_engine(qwen3_ckpt, max_model_len=48)) as server:
        yield server


@pytest.mark.parametrize(("path", "method", "examples"), OPERATIONS)
def test_no_generated_request_gets_a_server_error(small_server, path, method, examples):
    schema = schemathesis.openapi.from_url(f"{small_server.url}/openapi.json")
    operation = schema[path][method]
    failures = []

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy().map(served_model))
    def check(case):
        response = case.call(base_url=small_server.url, timeout=60)
        if response.status_code >= 500:
            failures.append((case.body, response.status_code, response.text[:300]))

    check()
    assert not failures, failures
    assert httpx.get(f"{small_server.url}/health").status_code == 200
    stats = small_server.app.state.context.engine.stats()
    assert stats.num_requests == 0 and stats.kv_blocks_used == 0
