"""The router's Prometheus metrics, per replica where it makes sense; each replica's own engine
metrics stay on the replica and are proxied at /replicas/{index}/metrics."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ponder.router.health import STATES, ReplicaHealth
from ponder.router.policies import ReplicaState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _ReplicaGauges(Collector):
    def __init__(self, replicas: Callable[[], Sequence[ReplicaState]]):
        self._replicas = replicas

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauges = {
            "healthy": ("1 if the replica answers its health check", lambda r: float(r.healthy)),
            "draining": ("1 while the replica is draining", lambda r: float(r.draining)),
            "in_flight": ("requests routed there and not finished", lambda r: r.in_flight),
            "outstanding_tokens": ("prompt + max output tokens in flight", lambda r: r.outstanding_tokens),
            "active_blocks": (
                "KV blocks the requests in flight add, cached prefixes not counted (estimated)",
                lambda r: r.active_blocks,
            ),
            "cached_blocks": ("prefix blocks its KV events say it holds", lambda r: len(r.prefix.stored)),
        }
        for name, (help_text, value) in gauges.items():
            family = GaugeMetricFamily(f"ponder_router_replica_{name}", help_text, labels=["replica"])
            for replica in self._replicas():
                family.add_metric([replica.name], value(replica))
            yield family


class _HealthGauges(Collector):
    def __init__(
        self, replicas: Callable[[], Sequence[ReplicaState]], health: Callable[[], Sequence[ReplicaHealth]]
    ):
        self._replicas = replicas
        self._health = health

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "ponder_router_replica_state",
            "1 for the replica's current health state (" + "|".join(STATES) + ")",
            labels=["replica", "role", "state"],
        )
        for replica, health in zip(self._replicas(), self._health()):
            for state in STATES:
                family.add_metric([replica.name, replica.role, state], float(health.state == state))
        yield family


class RouterMetrics:
    def __init__(
        self,
        replicas: Callable[[], Sequence[ReplicaState]],
        health: Callable[[], Sequence[ReplicaHealth]] = list,
    ):
        self.registry = CollectorRegistry()
        r = self.registry
        self.lost = Counter(
            "ponder_router_replica_lost",
            "Replicas declared lost, by replica and kind (dead: process gone; hung: no answer)",
            ["replica", "kind"],
            registry=r,
        )
        self.restarts = Counter(
            "ponder_router_replica_restarts",
            "Replica restarts by the router, by replica and reason (dead|hung)",
            ["replica", "reason"],
            registry=r,
        )
        self.requests = Counter(
            "ponder_router_requests",
            "Requests routed, by replica and outcome",
            ["replica", "outcome"],
            registry=r,
        )
        self.retries = Counter("ponder_router_retries", "Requests moved to another replica", registry=r)
        self.stream_errors = Counter(
            "ponder_router_stream_errors",
            "Streams ended by an error event (replica lost mid-stream)",
            registry=r,
        )
        self.unavailable = Counter("ponder_router_unavailable", "Requests no replica could take", registry=r)
        self.prefix_blocks = Counter(
            "ponder_router_prefix_blocks",
            "Prompt blocks routed, and of which the chosen replica held (router's view)",
            ["replica", "kind"],
            registry=r,
        )
        self.ttft = Histogram(
            "ponder_router_time_to_first_byte_seconds",
            "Time from routing to the replica's first response bytes",
            ["replica"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        r.register(_ReplicaGauges(replicas))
        r.register(_HealthGauges(replicas, health))

    def render(self) -> bytes:
        return generate_latest(self.registry)
