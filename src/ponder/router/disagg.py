"""Disaggregated serving in the router: a role-aware worker registry and the request path.

    client -> router: pick the decode worker D (policy over decode workers)
                      ask D how much of the prompt it has cached (POST D/disagg/cached)
                      uncached < --disagg-min-uncached-tokens: send the request to D as is
                      else: POST P/disagg/prefill (prompt KV + first token; P sends the KV)
                            then the request to D with kv_transfer_params (first token, P's
                            epoch): D emits the first token at once and decodes on from the KV
A prefill worker that fails (refused, died) means D computes the prompt itself, or, with
--kv-load-failure-policy fail, a 503; both are counted. D's stream is relayed to the client."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from ponder.router.balancer import Assignment, Balancer, NoReplicaError
from ponder.router.policies import Policy, ReplicaState, RoutedRequest
from ponder.router.prompts import PromptReader
from ponder.router.replicas import ReplicaHandle
from ponder.router.service import _DROPPED_HEADERS, Upstream

logger = logging.getLogger("ponder.router")
ROLES = ("prefill", "decode")
HEALTH_INTERVAL_S = 0.5
EVENTS_INTERVAL_S = 0.2
# A prefill hop (queueing included) longer than this counts as a failed prefill worker.
PREFILL_TIMEOUT_S = 600.0


@dataclass
class Worker:
    """One registered worker: its role, process handle, routing state and transfer identity."""

    role: str
    handle: ReplicaHandle
    state: ReplicaState
    epoch: str | None = None  # changes when the worker restarts: old transfers are void
    address: str | None = None  # torch connector: its TCPStore
    kv_cursor: int = 0
    restarts: int = 0

    @property
    def name(self) -> str:
        return self.handle.name

    @property
    def url(self) -> str:
        return self.handle.url


@dataclass
class WorkerRegistry:
    """Workers by role; the planner adds, removes and restarts them through this (docs/disaggregated.md)."""

    workers: dict[str, Worker] = field(default_factory=dict)
    _next_index: int = 0

    def add(self, role: str, handle: ReplicaHandle) -> Worker:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        if handle.name in self.workers:
            raise ValueError(f"a worker named {handle.name!r} is registered already")
        worker = Worker(role, handle, ReplicaState(self._next_index, handle.name, healthy=False))
        self._next_index += 1
        self.workers[handle.name] = worker
        return worker

    def remove(self, name: str) -> Worker:
        return self.workers.pop(name)

    def of_role(self, role: str) -> list[Worker]:
        return [w for w in self.workers.values() if w.role == role]

    def by_index(self, index: int) -> Worker:
        return next(w for w in self.workers.values() if w.state.index == index)


class DisaggMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter(
            "ponder_router_disagg_requests",
            "Requests by path: prefill_hop, skip_prefill (D had enough cached), direct (not "
            "eligible: n>1, logprobs, untokenizable), prefill_failed_recompute, prefill_failed_error",
            ["path"],
            registry=r,
        )
        self.prefill_seconds = Histogram(
            "ponder_router_disagg_prefill_seconds",
            "Router-side time of the prefill hop (request to first token back)",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


class DisaggService:
    def __init__(
        self,
        registry: WorkerRegistry,
        prefill_policy: Policy,
        decode_policy: Policy,
        reader: PromptReader,
        *,
        min_uncached_tokens: int = 64,
        failure_policy: str = "recompute",
    ):
        self.registry = registry
        self.reader = reader
        self.min_uncached_tokens = min_uncached_tokens
        self.failure_policy = failure_policy
        self.balancers = {"prefill": Balancer([], prefill_policy), "decode": Balancer([], decode_policy)}
        self.metrics = DisaggMetrics()
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(None, connect=5.0), trust_env=False)
        self.draining = False
        self._tasks: list[asyncio.Task] = []
        self._sync_balancers()

    # ---- registry ----------------------------------------------------------------------

    def _sync_balancers(self) -> None:
        for role, balancer in self.balancers.items():
            balancer.replicas = [w.state for w in self.registry.of_role(role)]

    async def add_worker(self, role: str, handle: ReplicaHandle, ready_timeout_s: float = 300.0) -> Worker:
        """Start (if needed) and register a worker; it takes requests once it is healthy."""
        worker = self.registry.add(role, handle)
        self._sync_balancers()
        await asyncio.to_thread(handle.start)
        await self._wait_ready([worker], ready_timeout_s)
        return worker

    async def remove_worker(self, name: str, timeout_s: float = 60.0) -> None:
        """Scale down: no new requests, wait for those in flight, stop it, forget it."""
        worker = self.registry.workers[name]
        worker.state.draining = True
        deadline = time.monotonic() + timeout_s
        while worker.state.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.registry.remove(name)
        self._sync_balancers()
        await asyncio.to_thread(_stop, worker.handle, timeout_s)

    async def restart_worker(self, name: str, ready_timeout_s: float = 300.0) -> Worker:
        """Stop (kill if it will not stop) and start again: it rejoins with a new epoch, so no
        transfer of its previous life is used by anyone."""
        worker = self.registry.workers[name]
        worker.state.healthy = False
        worker.epoch = None
        worker.state.prefix.clear()
        worker.kv_cursor = 0
        worker.restarts += 1
        await asyncio.to_thread(_stop, worker.handle, 10.0)
        await asyncio.to_thread(worker.handle.start)
        await self._wait_ready([worker], ready_timeout_s)
        return worker

    # ---- lifecycle ---------------------------------------------------------------------

    async def start(self, ready_timeout_s: float = 300.0) -> None:
        workers = list(self.registry.workers.values())
        await asyncio.gather(*(asyncio.to_thread(w.handle.start) for w in workers))
        await self._wait_ready(workers, ready_timeout_s)
        self._tasks = [asyncio.create_task(self._watch()), asyncio.create_task(self._watch_kv())]

    async def _wait_ready(self, workers: list[Worker], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not all(w.state.healthy and w.epoch for w in workers):
            for worker in workers:
                if not await asyncio.to_thread(worker.handle.is_running):
                    raise RuntimeError(f"worker {worker.name} exited during startup")
                await self._check(worker)
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers not ready after {timeout_s:.0f} s")
            await asyncio.sleep(0.2)

    async def shutdown(self, timeout_s: float = 30.0) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(
            *(asyncio.to_thread(_stop, w.handle, timeout_s) for w in self.registry.workers.values())
        )
        await self.client.aclose()

    async def drain_and_wait(self, timeout_s: float) -> None:
        self.draining = True
        deadline = time.monotonic() + timeout_s
        while self.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    def drain(self) -> None:
        self.draining = True

    @property
    def in_flight(self) -> int:
        return sum(b.in_flight for b in self.balancers.values())

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(HEALTH_INTERVAL_S)
            await asyncio.gather(*(self._check(w) for w in list(self.registry.workers.values())))

    async def _check(self, worker: Worker) -> None:
        """Health, and the worker's epoch: a worker that came back (new epoch) is re-read."""
        if not await asyncio.to_thread(worker.handle.is_running):
            worker.state.healthy = False
            worker.epoch = None
            return
        try:
            health = await self.client.get(worker.url + "/health", timeout=2.0)
            worker.state.healthy = health.status_code == 200
            if worker.state.healthy and worker.epoch is None:
                info = (await self.client.get(worker.url + "/disagg/info", timeout=2.0)).json()
                worker.epoch, worker.address = info["epoch"], info["address"]
                self.reader.block_size = (
                    int(info["block_size"]) if worker.role == "decode" else self.reader.block_size
                )
                logger.info("worker %s (%s) is up, epoch %s", worker.name, worker.role, worker.epoch)
        except (httpx.HTTPError, ValueError, KeyError):
            worker.state.healthy = False

    async def _watch_kv(self) -> None:
        while True:
            await asyncio.sleep(EVENTS_INTERVAL_S)
            await asyncio.gather(*(self._poll_kv(w) for w in self.registry.of_role("decode")))

    async def _poll_kv(self, worker: Worker) -> None:
        if not worker.state.healthy:
            return
        try:
            response = await self.client.get(
                f"{worker.url}/kv_events", params={"after": worker.kv_cursor}, timeout=2.0
            )
            batch = response.json()
            events = [(kind, int(block_hash, 16)) for kind, block_hash in batch["events"]]
        except (httpx.HTTPError, ValueError, KeyError):
            return
        worker.state.prefix.apply(events, lost=bool(batch["lost"]))
        worker.kv_cursor = int(batch["next_seq"])

    # ---- the request path ----------------------------------------------------------------

    async def open(
        self, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[Upstream, Assignment | None]:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        parsed = parsed if isinstance(parsed, dict) else {}
        token_ids = self.reader._token_ids(path, parsed)  # noqa: SLF001 - the same tokenization
        routed = self.reader.read(path, parsed)
        decode = self._assign("decode", routed)
        worker = self.registry.by_index(decode.replica.index)
        forward = {k: v for k, v in headers.items() if k.lower() not in _DROPPED_HEADERS}
        try:
            if token_ids is None or not _eligible(parsed):
                self.metrics.requests.labels("direct").inc()
                return await self._send(worker, decode, path, body, forward), None
            cached = await self._cached_tokens(worker, token_ids)
            if len(token_ids) - cached < self.min_uncached_tokens:
                self.metrics.requests.labels("skip_prefill").inc()
                return await self._send(worker, decode, path, body, forward), None
            hand_off = await self._prefill(routed, token_ids, parsed, worker, forward)
            if hand_off is None:
                if self.failure_policy == "fail":
                    self.metrics.requests.labels("prefill_failed_error").inc()
                    raise NoReplicaError("the prefill worker failed (--kv-load-failure-policy fail)")
                self.metrics.requests.labels("prefill_failed_recompute").inc()
                return await self._send(worker, decode, path, body, forward), None
            self.metrics.requests.labels("prefill_hop").inc()
            consumer = json.dumps({**parsed, "kv_transfer_params": hand_off}).encode()
            return await self._send(worker, decode, path, consumer, forward), None
        except BaseException:
            decode.release()
            raise

    def _assign(self, role: str, routed: RoutedRequest) -> Assignment:
        try:
            return self.balancers[role].assign(routed)
        except NoReplicaError:
            raise NoReplicaError(f"no healthy {role} worker is available") from None

    async def _cached_tokens(self, worker: Worker, token_ids: list[int]) -> int:
        try:
            answer = await self.client.post(
                worker.url + "/disagg/cached", json={"token_ids": token_ids}, timeout=5.0
            )
            return int(answer.json()["cached_tokens"])
        except (httpx.HTTPError, ValueError, KeyError):
            return 0

    async def _prefill(
        self, routed: RoutedRequest, token_ids: list[int], body: dict[str, Any], decode: Worker, headers: dict
    ) -> dict[str, Any] | None:
        """The prefill hop; the consumer's kv_transfer_params, or None if the prefill failed."""
        try:
            assignment = self._assign("prefill", routed)
        except NoReplicaError:
            return None
        producer = self.registry.by_index(assignment.replica.index)
        transfer_id = uuid.uuid4().hex
        spec = {
            "transfer_id": transfer_id,
            "producer_epoch": producer.epoch,
            "consumer_epoch": decode.epoch,
            "producer_address": producer.address,
        }
        started = time.monotonic()
        try:
            answer = await self.client.post(
                producer.url + "/disagg/prefill",
                json={
                    "token_ids": token_ids,
                    "sampling": body,
                    "kv_transfer_params": {"role": "producer", **spec},
                },
                headers={k: v for k, v in headers.items() if k.lower() == "authorization"},
                timeout=httpx.Timeout(PREFILL_TIMEOUT_S, connect=5.0),
            )
            if answer.status_code != 200:
                logger.warning(
                    "prefill on %s failed: %s %s", producer.name, answer.status_code, answer.text[:200]
                )
                return None
            first_token_id = int(answer.json()["first_token_id"])
        except (httpx.HTTPError, ValueError, KeyError) as error:
            logger.warning("prefill on %s failed: %s", producer.name, type(error).__name__)
            return None
        finally:
            assignment.release()
        self.metrics.prefill_seconds.observe(time.monotonic() - started)
        return {"role": "consumer", **spec, "first_token_id": first_token_id}

    async def _send(
        self, worker: Worker, assignment: Assignment, path: str, body: bytes, headers: dict
    ) -> Upstream:
        request = self.client.build_request("POST", worker.url + path, content=body, headers=headers)
        response = await self.client.send(request, stream=True)
        chunks = response.aiter_raw()
        first = b""
        async for chunk in chunks:
            if chunk:
                first = chunk
                break
        kept = {k: v for k, v in response.headers.items() if k.lower() not in _DROPPED_HEADERS}
        kept.pop("content-encoding", None)
        return Upstream(assignment, response.status_code, kept, first, response, chunks)

    async def relay(self, upstream: Upstream, error_event: bytes) -> AsyncIterator[bytes]:
        try:
            if upstream.first_chunk:
                yield upstream.first_chunk
            try:
                async for chunk in upstream.chunks:
                    yield chunk
            except httpx.TransportError:
                yield error_event
        finally:
            upstream.assignment.release()
            await upstream.response.aclose()


def _eligible(body: dict[str, Any]) -> bool:
    """The hand-off covers one sample without token logprobs (the first token has none)."""
    return (body.get("n") or 1) == 1 and not body.get("logprobs") and body.get("prompt_logprobs") is None


def _stop(handle: ReplicaHandle, timeout_s: float) -> None:
    handle.stop(graceful=True)
    handle.join(timeout_s)
