"""One `ponder bench` invocation: check the server, load prompts, warm up, run every rate."""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import httpx

from ponder.bench.client import auth_headers
from ponder.bench.config import BenchConfig, Target
from ponder.bench.datasets import TaskSource, load_prompts
from ponder.bench.errors import ServerUnreachableError
from ponder.bench.records import RunResult
from ponder.bench.runner import run_at_rate, warm_up
from ponder.bench.tokens import load_tokenizer

_PREFLIGHT_TIMEOUT_S = 10.0


@dataclass
class BenchResult:
    config: BenchConfig
    model: str
    created_at: str
    runs: list[RunResult]


async def run_benchmark(config: BenchConfig, task_source: TaskSource | None = None) -> BenchResult:
    """Raises BenchError subclasses for setup problems; failed requests are only recorded."""
    tokenizer = load_tokenizer(config.workload.tokenizer_path)
    prompts = load_prompts(config.workload, tokenizer, task_source)
    created_at = datetime.now(UTC).isoformat(timespec="seconds")
    async with _http_client(config) as client:
        target = replace(config.target, model=await resolve_model(client, config.target))
        warmups = await warm_up(client, target, prompts, config.load.num_warmups, tokenizer)
        for record in warmups:
            if not record.success:
                print(f"ponder bench: warm-up request failed: {record.error}", file=sys.stderr)
        runs = [
            await run_at_rate(
                client,
                target,
                prompts,
                rate,
                config.load,
                config.workload.num_prompts,
                tokenizer,
                show_progress=config.output.progress,
            )
            for rate in config.load.request_rates
        ]
    assert target.model is not None
    return BenchResult(config=config, model=target.model, created_at=created_at, runs=runs)


def _http_client(config: BenchConfig) -> httpx.AsyncClient:
    # No pool cap beyond the benchmark's own: a smaller pool would queue requests inside the
    # measured time and inflate TTFT.
    limits = httpx.Limits(
        max_connections=config.load.max_concurrency,
        max_keepalive_connections=config.load.max_concurrency,
    )
    timeout = httpx.Timeout(config.target.request_timeout_s, pool=None)
    return httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False)


async def resolve_model(client: httpx.AsyncClient, target: Target) -> str:
    """Checks the server answers; returns --model, or the first model it lists."""
    models_url = f"{target.base_url}/v1/models"
    try:
        response = await client.get(models_url, headers=auth_headers(target), timeout=_PREFLIGHT_TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise ServerUnreachableError(
            f"cannot reach {target.base_url} ({type(exc).__name__}: {exc or 'no answer'}); "
            "is the server running, and are the scheme, host and port of --base-url right?"
        ) from None
    if response.status_code in (401, 403):
        raise ServerUnreachableError(
            f"{models_url} refused the request (HTTP {response.status_code}); "
            "pass the server's key with --api-key"
        )
    if target.model:
        return target.model
    try:
        response.raise_for_status()
        return str(response.json()["data"][0]["id"])
    except (httpx.HTTPStatusError, ValueError, KeyError, IndexError, TypeError):
        raise ServerUnreachableError(
            f"{models_url} did not list a model (HTTP {response.status_code}); name one with --model"
        ) from None
