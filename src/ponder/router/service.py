"""RouterService: starts the replicas, watches them (health, KV events), and forwards each request
to the replica the balancer picks, retrying elsewhere while nothing has reached the client yet."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import httpx

from ponder.router.balancer import Assignment, Balancer, NoReplicaError
from ponder.router.metrics import RouterMetrics
from ponder.router.policies import Policy, ReplicaState
from ponder.router.prompts import PromptReader
from ponder.router.replicas import ReplicaHandle

logger = logging.getLogger("ponder.router")
HEALTH_INTERVAL_S = 0.5
EVENTS_INTERVAL_S = 0.2
FAILED_CHECKS_TO_DEAD = 3
# Hop-by-hop and length headers httpx and the server set again themselves.
_DROPPED_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "accept-encoding"}
_REPLICA_ERRORS = (httpx.TransportError,)  # refused, reset, closed mid-body: the replica failed


@dataclass
class Upstream:
    """The answer a replica started giving: status, headers and its first body chunk."""

    assignment: Assignment
    status_code: int
    headers: dict[str, str]
    first_chunk: bytes
    response: httpx.Response
    chunks: AsyncIterator[bytes]  # the rest of the body (an httpx stream is iterated once)


class RouterService:
    def __init__(
        self,
        handles: Sequence[ReplicaHandle],
        policy: Policy,
        reader: PromptReader,
        *,
        max_attempts: int | None = None,
    ):
        self.handles = list(handles)
        states = [ReplicaState(i, h.name, healthy=False) for i, h in enumerate(self.handles)]
        self.balancer = Balancer(states, policy)
        self.reader = reader
        self.metrics = RouterMetrics(lambda: self.balancer.replicas)
        self.max_attempts = max_attempts or len(self.handles)
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(None, connect=5.0), trust_env=False)
        self.draining = False
        self._cursors = [0] * len(self.handles)
        self._failed_checks = [0] * len(self.handles)
        self._dead = [False] * len(self.handles)
        self._tasks: list[asyncio.Task] = []

    @property
    def replicas(self) -> list[ReplicaState]:
        return self.balancer.replicas

    # ---- lifecycle ---------------------------------------------------------------------

    async def start(self, ready_timeout_s: float = 300.0) -> None:
        """Start every replica (in parallel) and wait until all answer /health."""
        await asyncio.gather(*(asyncio.to_thread(h.start) for h in self.handles))
        deadline = time.monotonic() + ready_timeout_s
        while not all(r.healthy for r in self.replicas):
            await self.check_health()
            if any(self._dead):
                dead = [h.name for h, d in zip(self.handles, self._dead) if d]
                raise RuntimeError(f"replica(s) {', '.join(dead)} exited during startup")
            if time.monotonic() > deadline:
                raise RuntimeError(f"replicas not ready after {ready_timeout_s:.0f} s")
            await asyncio.sleep(0.2)
        self._tasks = [asyncio.create_task(self._watch_health()), asyncio.create_task(self._watch_kv())]

    @property
    def in_flight(self) -> int:
        return self.balancer.in_flight

    def drain(self) -> None:
        """Refuse new requests (503); in-flight ones go on."""
        self.draining = True

    async def drain_and_wait(self, timeout_s: float) -> None:
        """Refuse new requests and wait for those in flight (none is aborted within the timeout)."""
        self.drain()
        deadline = time.monotonic() + timeout_s
        while self.balancer.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def drain_replica(self, index: int, timeout_s: float) -> None:
        """Scale down: send no new request to replica `index`, wait for its own, then stop it."""
        replica = self.replicas[index]
        replica.draining = True
        deadline = time.monotonic() + timeout_s
        while replica.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self._dead[index] = True
        replica.healthy = False
        await asyncio.to_thread(self._stop_one, self.handles[index], timeout_s)

    async def shutdown(self, timeout_s: float = 30.0) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(asyncio.to_thread(self._stop_one, h, timeout_s) for h in self.handles))
        await self.client.aclose()

    @staticmethod
    def _stop_one(handle: ReplicaHandle, timeout_s: float) -> None:
        handle.stop(graceful=True)
        handle.join(timeout_s)

    # ---- watching ----------------------------------------------------------------------

    async def _watch_health(self) -> None:
        while True:
            await asyncio.sleep(HEALTH_INTERVAL_S)
            await self.check_health()

    async def check_health(self) -> None:
        await asyncio.gather(*(self._check_one(i) for i in range(len(self.handles))))

    async def _check_one(self, index: int) -> None:
        replica, handle = self.replicas[index], self.handles[index]
        if self._dead[index]:
            return
        if not await asyncio.to_thread(handle.is_running):
            self.mark_dead(index, "its process exited")
            return
        if not handle.url:
            return
        try:
            response = await self.client.get(handle.url + "/health", timeout=2.0)
        except httpx.HTTPError:
            self._failed_checks[index] += 1
            if replica.healthy and self._failed_checks[index] >= FAILED_CHECKS_TO_DEAD:
                replica.healthy = False
                logger.warning("replica %s fails its health checks", replica.name)
            return
        self._failed_checks[index] = 0
        replica.healthy = response.status_code == 200
        replica.draining = replica.draining or response.status_code == 503

    def mark_dead(self, index: int, why: str) -> None:
        if not self._dead[index]:
            logger.warning("replica %s is dead: %s", self.replicas[index].name, why)
        self._dead[index] = True
        self.replicas[index].healthy = False
        self.replicas[index].prefix.clear()

    async def _watch_kv(self) -> None:
        while True:
            await asyncio.sleep(EVENTS_INTERVAL_S)
            await asyncio.gather(*(self.poll_kv_events(i) for i in range(len(self.handles))))

    async def poll_kv_events(self, index: int) -> None:
        if self._dead[index] or not self.handles[index].url:
            return
        try:
            response = await self.client.get(
                f"{self.handles[index].url}/kv_events", params={"after": self._cursors[index]}, timeout=2.0
            )
            if response.status_code != 200:
                return
            batch = response.json()
        except (httpx.HTTPError, ValueError):
            return
        self.reader.block_size = int(batch["block_size"])
        events = [(kind, int(block_hash, 16)) for kind, block_hash in batch["events"]]
        self.replicas[index].prefix.apply(events, lost=bool(batch["lost"]))
        self._cursors[index] = int(batch["next_seq"])

    # ---- forwarding --------------------------------------------------------------------

    async def open(self, path: str, body: bytes, headers: dict[str, str]) -> Upstream:
        """Send the request to a replica and read up to its first body chunk. A replica that fails
        before that (refused, reset, 503 draining) costs nothing visible: the next one is tried."""
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        routed = self.reader.read(path, parsed if isinstance(parsed, dict) else {})
        forward = {k: v for k, v in headers.items() if k.lower() not in _DROPPED_HEADERS}
        tried: set[int] = set()
        for attempt in range(self.max_attempts):
            try:
                assignment = self.balancer.assign(routed, frozenset(tried))
            except NoReplicaError:
                self.metrics.unavailable.inc()
                raise
            replica = assignment.replica
            tried.add(replica.index)
            if attempt:
                self.metrics.retries.inc()
            started = time.monotonic()
            try:
                request = self.client.build_request(
                    "POST", self.handles[replica.index].url + path, content=body, headers=forward
                )
                response = await self.client.send(request, stream=True)
                chunks = response.aiter_raw()
                first = b""
                async for chunk in chunks:
                    if chunk:
                        first = chunk
                        break
            except _REPLICA_ERRORS as error:
                assignment.release()
                self.metrics.requests.labels(replica.name, "replica_failed").inc()
                if not await asyncio.to_thread(self.handles[replica.index].is_running):
                    self.mark_dead(replica.index, f"{type(error).__name__}")
                continue
            except BaseException:
                assignment.release()
                raise
            if response.status_code == 503 and attempt + 1 < self.max_attempts:
                # draining or out of room: another replica may take it
                assignment.release()
                await response.aclose()
                self.metrics.requests.labels(replica.name, "unavailable").inc()
                continue
            self.metrics.ttft.labels(replica.name).observe(time.monotonic() - started)
            self.metrics.prefix_blocks.labels(replica.name, "queried").inc(len(routed.block_hashes))
            self.metrics.prefix_blocks.labels(replica.name, "hit").inc(assignment.cached_blocks)
            kept = {k: v for k, v in response.headers.items() if k.lower() not in _DROPPED_HEADERS}
            kept.pop("content-encoding", None)
            return Upstream(assignment, response.status_code, kept, first, response, chunks)
        raise NoReplicaError(f"the request failed on {len(tried)} replica(s)")

    async def relay(self, upstream: Upstream, error_event: bytes) -> AsyncIterator[bytes]:
        """The rest of the body; if the replica dies now, bytes already reached the client, so the
        stream ends with `error_event` instead of hanging or being silently cut."""
        assignment, replica = upstream.assignment, upstream.assignment.replica
        outcome = "ok"
        try:
            if upstream.first_chunk:
                yield upstream.first_chunk
            try:
                async for chunk in upstream.chunks:
                    yield chunk
            except _REPLICA_ERRORS:
                outcome = "failed_mid_stream"
                self.metrics.stream_errors.inc()
                yield error_event
        except BaseException:
            outcome = "client_gone"
            raise
        finally:
            assignment.release()
            self.metrics.requests.labels(replica.name, outcome).inc()
            await upstream.response.aclose()
