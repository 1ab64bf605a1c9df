"""Property-based requests generated from the server's own OpenAPI schema, checked with every
schemathesis check: no 5xx, only documented status codes and content types, response bodies
(JSON and each SSE event) that match the documented schemas, and schema-invalid bodies rejected
with a 4xx. One check is left out: `positive_data_acceptance` expects every schema-valid body to
succeed, but an OpenAI request can be schema-valid and still unanswerable (a prompt longer than
the context, a tool message without content, an empty prompt), which is a 400 by design."""

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis import checks as st_checks

from tests.server.harness import MODEL, real_engine, serve

CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_headers_conformance,
    st_checks.response_schema_conformance,
    st_checks.negative_data_rejection,
    st_checks.missing_required_header,
    st_checks.unsupported_method,
    st_checks.use_after_free,
    st_checks.ensure_resource_availability,
]
POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
OPERATIONS = [
    ("/v1/chat/completions", "POST", POSITIVE, 30),
    ("/v1/chat/completions", "POST", NEGATIVE, 15),
    ("/v1/completions", "POST", POSITIVE, 30),
    ("/v1/completions", "POST", NEGATIVE, 15),
    ("/v1/responses", "POST", POSITIVE, 20),
    ("/v1/responses", "POST", NEGATIVE, 10),
    ("/v1/models/{model}", "GET", POSITIVE, 5),
    ("/v1/models", "GET", POSITIVE, 2),
    ("/health", "GET", POSITIVE, 2),
    ("/version", "GET", POSITIVE, 2),
    ("/metrics", "GET", POSITIVE, 2),
]


def served_model(case):
    """Most generated model names are unknown (a 404 at once); use the served one instead,
    so the generated sampling fields reach the engine."""
    if isinstance(case.body, dict) and isinstance(case.body.get("model"), str):
        case.body["model"] = MODEL
    return case


@pytest.fixture(scope="module")
def small_server(qwen3_ckpt):
    # A short context bounds the work of any generated request (n x max_tokens).
    with serve(real_engine(qwen3_ckpt, max_model_len=48)) as server:
        yield server


@pytest.mark.parametrize(("path", "method", "mode", "examples"), OPERATIONS)
def test_generated_requests_pass_every_check(small_server, path, method, mode, examples):
    schema = schemathesis.openapi.from_url(f"{small_server.url}/openapi.json")
    operation = schema[path][method]
    failures = []

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(mode).map(served_model))
    def check(case):
        try:
            case.call_and_validate(base_url=small_server.url, checks=CHECKS, timeout=60)
        except Exception as failure:  # schemathesis raises one (group) per failing case
            failures.append(f"{case.body!r:.300}\n{failure}")

    check()
    assert not failures, "\n\n".join(failures[:3])
    assert httpx.get(f"{small_server.url}/health").status_code == 200
    stats = small_server.app.state.context.engine.stats()
    assert stats.num_requests == 0 and stats.kv_blocks_used == 0


def test_the_schema_documents_400_not_fastapis_422(small_server):
    schema = httpx.get(f"{small_server.url}/openapi.json").json()
    chat = schema["paths"]["/v1/chat/completions"]["post"]["responses"]
    assert "422" not in chat and {"200", "400", "413", "429"} <= set(chat)
    assert set(chat["200"]["content"]) == {"application/json", "text/event-stream"}
    assert "text/plain" in schema["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
