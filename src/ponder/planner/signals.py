"""What the planner reads from the workers' /metrics (Prometheus text, parsed with
prometheus_client's parser): cumulative counters per scrape, and the window between two scrapes
(arrival rate, mean input/output lengths, TTFT/TPOT attainment, queue depth, KV usage)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from ponder.errors import InvalidRequestError

TTFT = "ponder:time_to_first_token_seconds"
TPOT = "ponder:time_per_output_token_seconds"
PROMPT = "ponder:request_prompt_tokens"
GENERATED = "ponder:request_generation_tokens"


@dataclass
class Histogram:
    buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative count
    count: float = 0.0
    total: float = 0.0

    def within(self, bound: float) -> float:
        """Observations <= bound, linearly interpolated inside the bucket that holds it."""
        edges = sorted(self.buckets)
        below_edge, below_count = 0.0, 0.0
        for edge in edges:
            if edge >= bound:
                width = edge - below_edge
                share = 1.0 if width <= 0 or edge == float("inf") else (bound - below_edge) / width
                return below_count + share * (self.buckets[edge] - below_count)
            below_edge, below_count = edge, self.buckets[edge]
        return below_count

    def minus(self, earlier: Histogram) -> Histogram:
        return Histogram(
            {le: c - earlier.buckets.get(le, 0.0) for le, c in self.buckets.items()},
            self.count - earlier.count,
            self.total - earlier.total,
        )


@dataclass
class WorkerSample:
    """One scrape of one worker (all hosted models summed)."""

    ttft: Histogram = field(default_factory=Histogram)
    tpot: Histogram = field(default_factory=Histogram)
    prompt: Histogram = field(default_factory=Histogram)  # count = finished requests' prompts seen
    generated: Histogram = field(default_factory=Histogram)
    waiting: float = 0.0
    running: float = 0.0
    kv_usage: float = 0.0


def parse_metrics(text: str) -> WorkerSample:
    """A worker's /metrics text -> its sample; raises InvalidRequestError on text that is not
    Prometheus exposition or lacks the ponder: series."""
    sample = WorkerSample()
    found = False
    histograms = {TTFT: sample.ttft, TPOT: sample.tpot, PROMPT: sample.prompt, GENERATED: sample.generated}
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as error:  # the parser raises ValueError/TypeError/IndexError on bad text
        raise InvalidRequestError(f"not Prometheus metrics text: {error}", param="metrics") from error
    for family in families:
        for s in family.samples:
            name = s.name
            for base, hist in histograms.items():
                if name == base + "_bucket":
                    le = float(s.labels["le"])
                    hist.buckets[le] = hist.buckets.get(le, 0.0) + s.value
                elif name == base + "_count":
                    hist.count += s.value
                elif name == base + "_sum":
                    hist.total += s.value
            if name == "ponder:num_requests_waiting":
                sample.waiting += s.value
                found = True
            elif name == "ponder:num_requests_running":
                sample.running += s.value
            elif name == "ponder:kv_cache_usage_perc":
                sample.kv_usage = max(sample.kv_usage, s.value)
    if not found:
        raise InvalidRequestError("no ponder: engine metrics here (not a ponder worker?)", param="metrics")
    return sample


@dataclass(frozen=True)
class Window:
    """What happened on a pool of workers between two scrapes `seconds` apart."""

    seconds: float
    requests: float  # requests that got their first token
    finished: float
    mean_input_len: float
    mean_output_len: float
    ttft_attainment: float  # share of first tokens within the TTFT SLO (1.0 when none)
    tpot_attainment: float
    mean_ttft_s: float
    mean_tpot_s: float
    waiting: float  # now, summed over the pool
    running: float
    kv_usage: float  # the fullest worker's

    @property
    def arrival_rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def window(
    before: Iterable[WorkerSample],
    after: Iterable[WorkerSample],
    seconds: float,
    ttft_slo: float,
    tpot_slo: float,
) -> Window:
    """Sum per-worker deltas (workers pair up by position; a new worker compares to zero)."""
    if seconds <= 0:
        raise InvalidRequestError("the window must be > 0 s long", param="seconds")
    before, after = list(before), list(after)
    ttft, tpot, prompt, generated = Histogram(), Histogram(), Histogram(), Histogram()
    for i, now in enumerate(after):
        then = before[i] if i < len(before) else WorkerSample()
        for total, new, old in (
            (ttft, now.ttft, then.ttft),
            (tpot, now.tpot, then.tpot),
            (prompt, now.prompt, then.prompt),
            (generated, now.generated, then.generated),
        ):
            delta = new.minus(old)
            if delta.count < 0:  # the worker restarted: its counters began again
                delta = new
            total.count += delta.count
            total.total += delta.total
            for le, c in delta.buckets.items():
                total.buckets[le] = total.buckets.get(le, 0.0) + c

    def share(h: Histogram, bound: float) -> float:
        return min(1.0, h.within(bound) / h.count) if h.count > 0 else 1.0

    def mean(h: Histogram) -> float:
        return h.total / h.count if h.count > 0 else 0.0

    return Window(
        seconds=seconds,
        requests=ttft.count,
        finished=generated.count,
        mean_input_len=mean(prompt),
        mean_output_len=mean(generated),
        ttft_attainment=share(ttft, ttft_slo),
        tpot_attainment=share(tpot, tpot_slo),
        mean_ttft_s=mean(ttft),
        mean_tpot_s=mean(tpot),
        waiting=sum(s.waiting for s in after),
        running=sum(s.running for s in after),
        kv_usage=max((s.kv_usage for s in after), default=0.0),
    )
