"""Fixtures of the bench tests: a scripted fake OpenAI server and a config builder."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from ponder.bench.config import BenchConfig, LoadPattern, OutputOptions, Target, Workload
from ponder.bench.slo import SLO
from tests.bench.fake_openai_server import FakeOpenAIServer, Script


@pytest.fixture
def fake_server() -> Iterator[Callable[..., FakeOpenAIServer]]:
    """fake_server(script_for=...) starts a server that is stopped after the test."""
    started: list[FakeOpenAIServer] = []

    def start(script_for: Callable[[dict], Script] = lambda payload: Script()) -> FakeOpenAIServer:
        server = FakeOpenAIServer(script_for).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def make_config(
    base_url: str,
    *,
    num_prompts: int = 4,
    rates: tuple[float, ...] = (float("inf"),),
    max_concurrency: int | None = None,
    slo: SLO | None = None,
    endpoint: str = "/v1/chat/completions",
    request_timeout_s: float = 10.0,
    num_warmups: int = 0,
    **workload: object,
) -> BenchConfig:
    return BenchConfig(
        target=Target(base_url, endpoint=endpoint, request_timeout_s=request_timeout_s),
        workload=Workload(
            num_prompts=num_prompts,
            random_input_len=16,
            random_output_len=10,
            **workload,  # type: ignore[arg-type]
        ),
        load=LoadPattern(request_rates=rates, max_concurrency=max_concurrency, num_warmups=num_warmups),
        slo=slo or SLO(),
        output=OutputOptions(progress=False),
    )
