"""Prometheus metrics, named like vLLM's with a `ponder:` prefix: per-request latencies and token
counts observed by the server, engine gauges and counters read from the engine at scrape time."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from ponder.engine.llm_engine import EngineStats
    from ponder.engine.outputs import RequestOutput
    from ponder.reasoning.strategies import StrategyResult

TTFT_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
    160.0,
    640.0,
    2560.0,
)
TOKEN_LATENCY_BUCKETS = (
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
)
REQUEST_LATENCY_BUCKETS = (
    0.3,
    0.5,
    0.8,
    1.0,
    1.5,
    2.0,
    2.5,
    5.0,
    10.0,
    15.0,
    20.0,
    30.0,
    40.0,
    50.0,
    60.0,
    120.0,
    240.0,
    480.0,
    960.0,
    1920.0,
    7680.0,
)
TOKEN_COUNT_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ServerMetrics:
    """One registry per server, so several servers in one process (tests) stay apart; every
    series carries the `model_name` of the hosted model it is about."""

    def __init__(self, stats_by_model: Mapping[str, Callable[[], EngineStats]]):
        disable_created_metrics()  # the *_created series only add noise (vLLM drops them too)
        self.registry = CollectorRegistry()
        labels = ["model_name"]

        def histogram(name: str, doc: str, buckets) -> Histogram:
            return Histogram(f"ponder:{name}", doc, labels, buckets=buckets, registry=self.registry)

        def counter(name: str, doc: str, extra: tuple[str, ...] = ()) -> Counter:
            return Counter(f"ponder:{name}", doc, [*labels, *extra], registry=self.registry)

        self.ttft = histogram("time_to_first_token_seconds", "Time to first token.", TTFT_BUCKETS)
        self.tpot = histogram(
            "time_per_output_token_seconds",
            "Mean time per output token after the first.",
            TOKEN_LATENCY_BUCKETS,
        )
        self.itl = histogram(
            "inter_token_latency_seconds", "Time between streamed outputs.", TOKEN_LATENCY_BUCKETS
        )
        self.e2e = histogram(
            "e2e_request_latency_seconds",
            "Request latency, arrival to last token.",
            REQUEST_LATENCY_BUCKETS,
        )
        self.queue_time = histogram(
            "request_queue_time_seconds",
            "Time waiting before first scheduled.",
            REQUEST_LATENCY_BUCKETS,
        )
        self.prefill_time = histogram(
            "request_prefill_time_seconds",
            "First scheduled to first token.",
            REQUEST_LATENCY_BUCKETS,
        )
        self.decode_time = histogram(
            "request_decode_time_seconds", "First token to last token.", REQUEST_LATENCY_BUCKETS
        )
        self.request_prompt_tokens = histogram(
            "request_prompt_tokens", "Prompt tokens per request.", TOKEN_COUNT_BUCKETS
        )
        self.request_generation_tokens = histogram(
            "request_generation_tokens", "Generated tokens per request.", TOKEN_COUNT_BUCKETS
        )
        self.request_reasoning_tokens = histogram(
            "request_reasoning_tokens", "Thinking tokens per request.", TOKEN_COUNT_BUCKETS
        )
        self.prompt_tokens = counter("prompt_tokens", "Prompt tokens of admitted requests.")
        self.generation_tokens = counter("generation_tokens", "Generated tokens.")
        self.reasoning_tokens = counter("reasoning_tokens", "Generated tokens inside <think>.")
        self.request_success = counter(
            "request_success", "Finished requests by finish reason.", ("finished_reason",)
        )
        self.requests_rejected = counter(
            "requests_rejected", "Requests refused before reaching the engine.", ("reason",)
        )
        # Every response by status, errors included (a 400 before any model is known, a 401, 413,
        # 429): no model label, since many are refused before a model is read from the body.
        self.http_responses = Counter(
            "ponder:http_responses",
            "HTTP responses by route and status.",
            ["route", "status"],
            registry=self.registry,
        )
        self.strategy_runs = counter(
            "strategy_runs", "Finished reasoning_strategy runs, by strategy type.", ("strategy",)
        )
        self.registry.register(_EngineStatsCollector(dict(stats_by_model)))

    def model(self, name: str) -> ModelMetrics:
        return ModelMetrics(self, name)

    def render(self) -> bytes:
        return generate_latest(self.registry)


@dataclass(frozen=True)
class ModelMetrics:
    """What one hosted model records (labelled with its name)."""

    server: ServerMetrics
    model_name: str

    def track(self) -> RequestTracker:
        return RequestTracker(self.server, self.model_name)

    def rejected(self, reason: str) -> None:
        self.server.requests_rejected.labels(self.model_name, reason).inc()

    def strategy_finished(self, result: StrategyResult, seconds: float) -> None:
        """A strategy run is one API request made of many engine requests: count them all."""
        metrics, label, usage = self.server, self.model_name, result.usage
        metrics.strategy_runs.labels(label, result.strategy).inc()
        metrics.request_success.labels(label, result.finish_reason).inc()
        metrics.e2e.labels(label).observe(seconds)
        metrics.prompt_tokens.labels(label).inc(usage.prompt_tokens)
        metrics.generation_tokens.labels(label).inc(usage.generated_tokens)
        metrics.reasoning_tokens.labels(label).inc(usage.reasoning_tokens)
        metrics.request_prompt_tokens.labels(label).observe(usage.prompt_tokens)
        metrics.request_generation_tokens.labels(label).observe(usage.generated_tokens)
        metrics.request_reasoning_tokens.labels(label).observe(usage.reasoning_tokens)

    def strategy_aborted(self) -> None:
        self.server.request_success.labels(self.model_name, "abort").inc()


class RequestTracker:
    """Observes one engine request's DELTA outputs and records its metrics once it ends."""

    def __init__(self, metrics: ServerMetrics, model_name: str):
        self._metrics = metrics
        self._label = model_name
        self.start = time.monotonic()
        self.first_token_at: float | None = None
        self.last_output_at: float | None = None
        self.num_generated = 0
        self._reasoning_by_index: dict[int, int] = {}
        self._prompt_counted = False
        self.done = False

    def observe(self, output: RequestOutput) -> None:
        metrics, label = self._metrics, self._label
        now = time.monotonic()
        if not self._prompt_counted:
            self._prompt_counted = True
            metrics.prompt_tokens.labels(label).inc(len(output.prompt_token_ids))
            metrics.request_prompt_tokens.labels(label).observe(len(output.prompt_token_ids))
        new_tokens = sum(len(c.token_ids) for c in output.outputs)
        if new_tokens:
            if self.first_token_at is None:
                self.first_token_at = now
                metrics.ttft.labels(label).observe(now - self.start)
            elif self.last_output_at is not None:
                metrics.itl.labels(label).observe(now - self.last_output_at)
            self.last_output_at = now
            self.num_generated += new_tokens
            metrics.generation_tokens.labels(label).inc(new_tokens)
        for completion in output.outputs:
            before = self._reasoning_by_index.get(completion.index, 0)
            if completion.num_reasoning_tokens > before:
                metrics.reasoning_tokens.labels(label).inc(completion.num_reasoning_tokens - before)
                self._reasoning_by_index[completion.index] = completion.num_reasoning_tokens
        if output.finished:
            self._finish(output, now)

    def abort(self) -> None:
        """The client went away (or the server gave up) before the request finished."""
        if not self.done:
            self.done = True
            self._metrics.request_success.labels(self._label, "abort").inc()

    def _finish(self, output: RequestOutput, now: float) -> None:
        if self.done:
            return
        self.done = True
        metrics, label = self._metrics, self._label
        for completion in output.outputs:
            reason = completion.finish_reason or "stop"
            metrics.request_success.labels(label, reason).inc()
        metrics.e2e.labels(label).observe(now - self.start)
        metrics.request_generation_tokens.labels(label).observe(self.num_generated)
        metrics.request_reasoning_tokens.labels(label).observe(sum(self._reasoning_by_index.values()))
        if self.first_token_at is not None and self.num_generated > 1:
            metrics.tpot.labels(label).observe((now - self.first_token_at) / (self.num_generated - 1))
        # Queue time is the engine's; the later phase boundaries are what the server observed
        # (the engine stamps a step's start, which would put a whole prefill step at zero).
        timing = output.metrics
        if timing is None or timing.first_scheduled_time is None:
            return
        metrics.queue_time.labels(label).observe(timing.first_scheduled_time - timing.arrival_time)
        if self.first_token_at is not None:
            prefill = max(0.0, self.first_token_at - timing.first_scheduled_time)
            metrics.prefill_time.labels(label).observe(prefill)
            metrics.decode_time.labels(label).observe(now - self.first_token_at)


class _EngineStatsCollector(Collector):
    """Reads each engine's own gauges and counters when Prometheus scrapes."""

    def __init__(self, stats_by_model: dict[str, Callable[[], EngineStats]]):
        self._stats_by_model = stats_by_model

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        stats = {name: read() for name, read in self._stats_by_model.items()}

        def family(kind, name: str, doc: str, field: str):
            metric = kind(f"ponder:{name}", doc, labels=["model_name"])
            for model_name, values in stats.items():
                metric.add_metric([model_name], getattr(values, field))
            return metric

        yield family(
            GaugeMetricFamily, "num_requests_running", "Sequences in the running batch.", "num_running"
        )
        yield family(
            GaugeMetricFamily,
            "num_requests_waiting",
            "Sequences waiting to be scheduled.",
            "num_waiting",
        )
        yield family(
            GaugeMetricFamily,
            "num_spare_seats",
            "Sequences that could still start at once (max_num_seqs less running and waiting).",
            "spare_seats",
        )
        yield family(
            GaugeMetricFamily,
            "kv_cache_usage_perc",
            "Fraction of KV blocks in use (0-1).",
            "kv_cache_usage",
        )
        yield family(
            CounterMetricFamily,
            "prefix_cache_queries",
            "Prompt tokens looked up in the prefix cache.",
            "prefix_cache_queries",
        )
        yield family(
            CounterMetricFamily,
            "prefix_cache_hits",
            "Prompt tokens found in the prefix cache.",
            "prefix_cache_hits",
        )
        yield family(CounterMetricFamily, "num_preemptions", "Sequences preempted.", "num_preemptions")
        yield from speculative_families(stats)


def speculative_families(stats: dict[str, EngineStats]) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    """Speculative decoding (engine/spec/): counters, plus acceptance rate and accepted length."""
    counters = [
        ("spec_decode_num_draft_tokens", "Draft tokens verified.", "spec_draft_tokens"),
        ("spec_decode_num_accepted_tokens", "Draft tokens accepted.", "spec_accepted_tokens"),
        ("spec_decode_num_verifications", "Sequence-steps that verified drafts.", "spec_verifications"),
        ("spec_decode_num_emitted_tokens", "Tokens appended by verifying steps.", "spec_emitted_tokens"),
    ]
    # Stats from elsewhere (a router's, a test's) may predate speculation: they count zero.
    for name, doc, field in counters:
        counter = CounterMetricFamily(f"ponder:{name}", doc, labels=["model_name"])
        for model_name, values in stats.items():
            counter.add_metric([model_name], getattr(values, field, 0))
        yield counter
    rate = GaugeMetricFamily(
        "ponder:spec_decode_acceptance_rate", "Accepted / verified draft tokens (0-1).", labels=["model_name"]
    )
    length = GaugeMetricFamily(
        "ponder:spec_decode_mean_accepted_length",
        "Tokens per verifying sequence-step (1 = no gain).",
        labels=["model_name"],
    )
    for model_name, values in stats.items():
        drafts = getattr(values, "spec_draft_tokens", 0)
        verifications = getattr(values, "spec_verifications", 0)
        accepted, emitted = (
            getattr(values, "spec_accepted_tokens", 0),
            getattr(values, "spec_emitted_tokens", 0),
        )
        rate.add_metric([model_name], accepted / drafts if drafts else 0.0)
        length.add_metric([model_name], emitted / verifications if verifications else 0.0)
    yield rate
    yield length
